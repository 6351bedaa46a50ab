"""``GET /api/v1/projects/<id>/map``: every embedded image of a project as a 2-D point."""

from __future__ import annotations

import json

from flask import current_app

from ..embedding_map import check_method, map_payload
from ..projects import project_by_id
from . import bp, schemas
from .inputs import MapQuery
from .spec import declare


@bp.get("/projects/<id:project_id>/map")
@declare("embeddingMap", (200, schemas.Map), 404, 409, query=MapQuery)
def embedding_map(project_id: int, query: MapQuery):
    """Every embedded image as a 2-D point, in columns (image id, x, y, label, predicted
    class id; -1 for none). ``?method=umap`` needs the umap-learn package (else 409)."""
    project = project_by_id(project_id)
    check_method(query.method)  # umap without its package: a 409 with the sentence
    # Serialised here, not by the model: a map can hold a million points (the tests
    # validate it against schemas.Map).
    body = json.dumps(map_payload(project, query.method), separators=(",", ":"))
    return current_app.response_class(body, mimetype="application/json")
