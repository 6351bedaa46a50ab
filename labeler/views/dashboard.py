"""The lead's dashboard page: charts of the project's progress, retraining and settings.

The page is a shell; static/dashboard.js draws it from ``GET /api/v1/projects/<id>/dashboard``
and keeps it current while jobs run.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from ..projects import project_by_id
from ..round_cadence import project_min_round_interval_s
from ..training import project_retrain_every, project_strategies, project_strategy
from .access import lead_required

bp = Blueprint("dashboard", __name__)


@bp.route("/<id:project_id>/dashboard")
@lead_required
def dashboard(project_id: int):
    """The dashboard of one project (leads only; annotators get 403)."""
    project = project_by_id(project_id)
    return render_template("dashboard.html", project=project,
                           strategies=project_strategies(project),
                           strategy=project_strategy(project),
                           retrain_every=project_retrain_every(project),
                           min_round_interval_s=project_min_round_interval_s(project))
