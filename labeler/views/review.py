"""The review page: a reviewer accepts or corrects others' labels by keyboard. The page's
script talks to the API (``/projects/<id>/review`` and ``/reviews``)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

from ..membership import can_review
from ..projects import project_by_id
from ..review import ORDERS

bp = Blueprint("review", __name__)


@bp.route("/<id:project_id>/review")
@login_required
def review_page(project_id: int):
    project = project_by_id(project_id)
    if not can_review(current_user, project.id):
        abort(403, "Only the project's reviewers and leads review labels; ask a project lead "
                   "to make you a reviewer.")
    classes = [{"name": c.name, "key": c.key, "colour": c.colour}
               for c in project.active_classes()]
    return render_template("review.html", project=project, classes=classes, orders=ORDERS)
