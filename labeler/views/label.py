"""The labelling page: one large image, keyboard first. The page's script talks to the API."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

from ..projects import project_by_id

bp = Blueprint("label", __name__)


@bp.route("/<id:project_id>/label")
@login_required
def label_page(project_id: int):
    project = project_by_id(project_id)
    classes = [{"name": c.name, "key": c.key, "colour": c.colour}
               for c in project.active_classes()]
    return render_template("label.html", project=project, classes=classes)
