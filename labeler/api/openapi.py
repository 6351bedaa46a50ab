"""``GET /api/v1/openapi.json``: the OpenAPI document of the JSON API.

It is public (listed in the blueprint's authentication allow-list) because it only
describes the API; every operation it documents still needs a token or a session.
"""

from __future__ import annotations

from flask import Response, jsonify

from . import bp
from .openapi_spec import build


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document of ``/api/v1`` (see ``labeler.api.openapi_spec``)."""
    return jsonify(build())
