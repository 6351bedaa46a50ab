"""Review through the API: the reviewer's queue, and accepting or correcting a label."""

from __future__ import annotations

from flask import url_for
from flask_login import current_user

from ..membership import can_review
from ..projects import class_by_name, project_by_id
from ..review import review_queue, submit_review
from . import ApiError, bp, schemas, serialize, team_schemas
from .inputs import NewReview, ReviewQuery
from .spec import declare


def _require_reviewer(project_id: int) -> None:
    if not can_review(current_user, project_id):
        raise ApiError(403, "Forbidden", "Only the project's reviewers and leads review "
                       "labels; ask a project lead to make you a reviewer.")


@bp.get("/projects/<id:project_id>/review")
@declare("reviewQueue", (200, team_schemas.ReviewQueue), 403, 404, query=ReviewQuery)
def review_items(project_id: int, query: ReviewQuery):
    """Labels for the caller to review (reviewers and leads): others' hand-made labels
    not reviewed yet, newest first, suspected errors first, or a random sample."""
    project = project_by_id(project_id)
    _require_reviewer(project.id)
    names = {c.id: c.name for c in project.classes}
    return {"items": [{
        "annotation_id": a.id, "image_id": i.id,
        "image_url": url_for("images.display", image_id=i.id),
        "label": names[a.label_class_id], "annotator": a.annotator.username,
        "labelled_at": a.created_at, "predicted": names.get(i.predicted_class_id),
        "confidence": i.confidence, "suspected_error": bool(i.suspected_error)}
        for a, i in review_queue(project, current_user, query.order, query.n)]}


@bp.post("/projects/<id:project_id>/reviews")
@declare("review", (201, schemas.Annotation), 403, 404, 409, json=NewReview)
def post_review(project_id: int, json: NewReview):
    """Accept a label (no ``label``) or correct it (reviewers and leads): a new annotation
    by the reviewer that names the one reviewed; its class is what the next round trains
    on."""
    project = project_by_id(project_id)
    _require_reviewer(project.id)
    corrected = class_by_name(project, json.label) if json.label is not None else None
    return serialize.annotation(submit_review(project, json.annotation_id, current_user,
                                              corrected)), 201
