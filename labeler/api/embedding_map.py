"""``GET /api/v1/projects/<id>/map``: every embedded image of a project as a 2-D point."""

from __future__ import annotations

import json

from flask import current_app

from ..embedding_map import check_method
from ..jobs.map_layouts import map_with_layout
from ..projects import project_by_id
from . import bp, schemas
from .inputs import MapQuery
from .spec import declare


@bp.get("/projects/<id:project_id>/map")
@declare("embeddingMap", (200, schemas.Map), 404, query=MapQuery)
def embedding_map(project_id: int, query: MapQuery):
    """The project's embedding map: classes, and columns of points (image id, x, y, label,
    predicted class id; -1 for none). The t-SNE layout once it is computed, PCA until then
    (which queues the layout); ``?method=pca`` for PCA always."""
    project = project_by_id(project_id)
    check_method(query.method)
    # Serialised here, not by the model: a map can hold a million points (the tests
    # validate it against schemas.Map).
    payload = map_with_layout(current_app._get_current_object(), project, query.method)
    body = json.dumps(payload, separators=(",", ":"))
    return current_app.response_class(body, mimetype="application/json")
