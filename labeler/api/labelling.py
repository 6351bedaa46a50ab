"""Labelling through the API: next images (leased), labels, undo, skip."""

from __future__ import annotations

from flask import current_app
from flask_login import current_user

from ..jobs.triggers import maybe_submit_retrain
from ..projects import class_by_name, project_by_id
from ..queue import lease_next, skip, submit_label, undo
from ..rounds import load_head
from . import bp, schemas, serialize
from .inputs import ImageRef, NewAnnotation, NextQuery
from .spec import declare


@bp.get("/projects/<id:project_id>/next")
@declare("nextImages", (200, schemas.NextImages), 404, query=NextQuery)
def next_images(project_id: int, query: NextQuery):
    """The next images for the caller, each leased to them for 10 minutes."""
    project = project_by_id(project_id)
    images = lease_next(project, current_user, n=query.n)
    head = load_head(project)
    names = {c.id: c.name for c in project.classes}
    return {"items": [serialize.image_item(project, image, head, names) for image in images]}


@bp.post("/projects/<id:project_id>/annotations")
@declare("createAnnotation", (201, schemas.Annotation), 404, 409, json=NewAnnotation)
def create_annotation(project_id: int, json: NewAnnotation):
    """Label an image with a class name; may start a retrain round in the background.

    A class name the project does not have is a 404, like an image it does not have.
    """
    project = project_by_id(project_id)
    label_class = class_by_name(project, json.label)
    annotation = submit_label(project, json.image_id, label_class, current_user)
    maybe_submit_retrain(current_app._get_current_object(), project)
    return serialize.annotation(annotation), 201


@bp.delete("/annotations/<id:annotation_id>")
@declare("undoAnnotation", (200, schemas.Annotation), 404)
def delete_annotation(annotation_id: int):
    """Undo an annotation (annotators: their own only)."""
    return serialize.annotation(undo(annotation_id, current_user))


@bp.post("/projects/<id:project_id>/skip")
@declare("skipImage", (200, schemas.Skipped), 404, 409, json=ImageRef)
def skip_image(project_id: int, json: ImageRef):
    """Put an image back at the end of the queue and release the caller's lease."""
    project = project_by_id(project_id)
    skip(project, json.image_id, current_user)
    return {"skipped": True}
