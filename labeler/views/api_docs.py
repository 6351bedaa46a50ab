"""``/api/docs``: the API reference for people, Swagger UI over ``/api/v1/openapi.json``.

Public, like the document it renders: it only describes the API, and every operation
still needs a token or a session. Signed-in users can try operations from the page with
their session (the page hands its script the CSRF token that state-changing calls need).
"""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("api_docs", __name__)

#: Where the OpenAPI document is served (the JSON API's blueprint owns the route).
OPENAPI_URL = "/api/v1/openapi.json"


@bp.route("/api/docs")
def reference():
    """The rendered OpenAPI document (static/vendor/swagger-ui, started by api_docs.js)."""
    return render_template("api_docs.html", openapi_url=OPENAPI_URL)
