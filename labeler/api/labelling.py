"""Labelling through the API: next images (leased), labels, undo, skip."""

from __future__ import annotations

from flask import current_app
from flask_login import current_user

from ..jobs.triggers import maybe_submit_retrain
from ..projects import class_by_name, project_by_id
from ..queue import lease_next, require_kind, skip, submit_label, submit_tags, undo
from ..rounds import load_head
from ..tag_sets import tags_named
from . import bp, schemas, serialize
from .inputs import ImageRef, NewAnnotation, NextQuery
from .spec import declare


@bp.get("/projects/<id:project_id>/next")
@declare("nextImages", (200, schemas.NextImages), 404, query=NextQuery)
def next_images(project_id: int, query: NextQuery):
    """The next images for the caller, each leased to them for 10 minutes."""
    project = project_by_id(project_id)
    images = lease_next(project, current_user, n=query.n)
    return {"items": serialize.image_items(project, images, load_head(project))}


@bp.post("/projects/<id:project_id>/annotations")
@declare("createAnnotation", (201, schemas.Annotation), 404, 409, json=NewAnnotation)
def create_annotation(project_id: int, json: NewAnnotation):
    """Label an image: with a class name (``label``), or in a multi-label project with its
    set of tags (``labels``, ``[]`` for none); may start a retrain round in the background.

    A class name the project does not have is a 404, like an image it does not have; the
    field of the other kind of project is a 409 whose sentence names the field to send (the
    request fits the document, which cannot know the project's kind).
    """
    project = project_by_id(project_id)
    if json.labels is not None:
        require_kind(project, multi_label=True)
        annotation = submit_tags(project, json.image_id, tags_named(project, json.labels),
                                 current_user)
    else:
        require_kind(project, multi_label=False)
        annotation = submit_label(project, json.image_id, class_by_name(project, json.label),
                                  current_user)
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
