"""Project list and project overview."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import login_required
from sqlalchemy import select

from ..extensions import db
from ..models import Image, Project
from ..projects import project_counts

bp = Blueprint("projects", __name__)

RECENT_IMAGES = 24


@bp.route("")
@login_required
def index():
    projects = db.session.scalars(select(Project).order_by(Project.name)).all()
    rows = [(project, project_counts(project)) for project in projects]
    return render_template("projects/index.html", rows=rows)


@bp.route("projects/<int:project_id>")
@login_required
def show(project_id: int):
    project = db.session.get(Project, project_id) or abort(404)
    recent = db.session.scalars(
        select(Image).where(Image.project_id == project.id)
        .order_by(Image.id.desc()).limit(RECENT_IMAGES)
    ).all()
    return render_template("projects/show.html", project=project,
                           counts=project_counts(project), recent=recent)
