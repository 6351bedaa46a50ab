"""``GET /api/v1/projects/<id>/map``: every embedded image of a project as a 2-D point."""

from __future__ import annotations

import json

from flask import current_app, request

from ..embedding_map import check_method, map_payload
from ..projects import project_by_id
from . import bp


@bp.get("/projects/<int:project_id>/map")
def embedding_map(project_id: int):
    """The project's embedding map: classes, and columns of points (image id, x, y, label,
    predicted class id; -1 for none). ``?method=umap`` when the umap package is installed."""
    project = project_by_id(project_id)
    method = request.args.get("method", "pca")
    check_method(method)  # a LabelerError is a 400 with its sentence
    body = json.dumps(map_payload(project, method), separators=(",", ":"))
    return current_app.response_class(body, mimetype="application/json")
