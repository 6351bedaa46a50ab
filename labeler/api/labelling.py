"""Labelling through the API: next images (leased), labels, undo, skip."""

from __future__ import annotations

from flask import current_app, jsonify
from flask_login import current_user

from ..errors import NotFound
from ..jobs.triggers import maybe_submit_retrain
from ..projects import class_by_name, project_by_id
from ..queue import lease_next, skip, submit_label, undo
from ..rounds import load_head
from . import ApiError, bp, serialize
from .payload import field, int_arg, json_body

MAX_BATCH = 50


@bp.get("/projects/<int:project_id>/next")
def next_images(project_id: int):
    """The next ``n`` images for the caller, each leased to them for 10 minutes."""
    project = project_by_id(project_id)
    n = int_arg("n", 1, 1, MAX_BATCH)
    images = lease_next(project, current_user, n=n)
    head = load_head(project)
    names = {c.id: c.name for c in project.classes}
    return jsonify(items=[serialize.image_item(project, image, head, names)
                          for image in images])


@bp.post("/projects/<int:project_id>/annotations")
def create_annotation(project_id: int):
    """Label an image with a class name; may start a retrain round in the background."""
    project = project_by_id(project_id)
    data = json_body()
    image_id = field(data, "image_id", int)
    label = field(data, "label", str)
    try:
        label_class = class_by_name(project, label)
    except NotFound as exc:  # a bad value in the body, not a missing resource
        raise ApiError(400, "Bad request", str(exc)) from exc
    annotation = submit_label(project, image_id, label_class, current_user)
    maybe_submit_retrain(current_app._get_current_object(), project)
    return jsonify(serialize.annotation(annotation)), 201


@bp.delete("/annotations/<int:annotation_id>")
def delete_annotation(annotation_id: int):
    """Undo an annotation (annotators: their own only)."""
    annotation = undo(annotation_id, current_user)
    return jsonify(serialize.annotation(annotation))


@bp.post("/projects/<int:project_id>/skip")
def skip_image(project_id: int):
    """Put an image back at the end of the queue and release the caller's lease."""
    project = project_by_id(project_id)
    skip(project, field(json_body(), "image_id", int), current_user)
    return jsonify(skipped=True)
