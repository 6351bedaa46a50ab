"""The lead's dashboard page: charts of the project's progress, retraining and settings.

The page is a shell; static/dashboard.js draws it from ``GET /api/v1/projects/<id>/dashboard``
and keeps it current while jobs run.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from ..learning.query import STRATEGIES
from ..projects import project_by_id
from ..training import project_retrain_every, project_strategy
from .access import lead_required

bp = Blueprint("dashboard", __name__)


@bp.route("/<id:project_id>/dashboard")
@lead_required
def dashboard(project_id: int):
    """The dashboard of one project (leads only; annotators get 403)."""
    project = project_by_id(project_id)
    return render_template("dashboard.html", project=project, strategies=STRATEGIES,
                           strategy=project_strategy(project),
                           retrain_every=project_retrain_every(project))
