"""The embedding map page: every embedded image as a point, coloured by label or prediction.

The page is a shell; static/embedding_map.js fetches ``GET /api/v1/projects/<id>/map`` and
draws the points on a canvas.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

from ..projects import project_by_id

bp = Blueprint("embedding_map", __name__)


@bp.route("/<id:project_id>/map")
@login_required
def map_page(project_id: int):
    """Render the embedding map of a project (any logged-in user may look)."""
    project = project_by_id(project_id)
    return render_template("embedding_map.html", project=project)
