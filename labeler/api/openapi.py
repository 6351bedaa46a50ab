"""``GET /api/v1/openapi.json``: the OpenAPI document of the JSON API.

Generated from the declarations on the views (``labeler.api.spec``), so it states what the
server enforces. It is public (listed in the blueprint's authentication allow-list)
because it only describes the API; every operation it documents still needs a token or a
session.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from . import bp
from .spec import declare, document

#: The downloads of ``GET /projects/{id}/export``, which are not JSON.
EXPORT_CONTENT = {
    "text/csv": {"schema": {"type": "string"}},
    "application/x-ndjson": {"schema": {"type": "string"}},
    "application/zip": {"schema": {"type": "string", "contentMediaType": "application/zip"}},
    "application/octet-stream": {"schema": {
        "type": "string", "contentMediaType": "application/octet-stream"}},
}


#: Operations that take a project id, which a new project's response supplies.
PROJECT_OPERATIONS = {
    "projectStats": ("/projects/{project_id}/stats", "get"),
    "nextImages": ("/projects/{project_id}/next", "get"),
    "listImages": ("/projects/{project_id}/images", "get"),
    "uploadImages": ("/projects/{project_id}/images", "post"),
    "createAnnotation": ("/projects/{project_id}/annotations", "post"),
    "bulkLabel": ("/projects/{project_id}/bulk-label", "post"),
    "dashboard": ("/projects/{project_id}/dashboard", "get"),
    "embeddingMap": ("/projects/{project_id}/map", "get"),
}


def _links(doc: dict[str, Any]) -> None:
    """OpenAPI links: which response supplies which id (clients and fuzzers follow them)."""
    def link(path: str, method: str, status: str, name: str, target: str,
             parameters: dict[str, str]) -> None:
        response = doc["paths"][path][method]["responses"][status]
        response.setdefault("links", {})[name] = {"operationId": target,
                                                  "parameters": parameters}

    for target in PROJECT_OPERATIONS:
        link("/projects", "post", "201", target, target, {"project_id": "$response.body#/id"})
    link("/projects/{project_id}/annotations", "post", "201", "undoAnnotation",
         "undoAnnotation", {"annotation_id": "$response.body#/annotation_id"})
    link("/projects/{project_id}/retrain", "post", "202", "jobStatus", "jobStatus",
         {"job_id": "$response.body#/job_id"})


def _amend(doc: dict[str, Any]) -> None:
    """What the declarations cannot say: a public operation, non-JSON downloads, links."""
    _links(doc)
    item = doc["paths"]["/openapi.json"]["get"]
    item["security"] = []
    item["responses"] = {"200": {"description": "This document.", "content": {
        "application/json": {"schema": {"type": "object"}}}}}
    ok = doc["paths"]["/projects/{project_id}/export"]["get"]["responses"]["200"]
    ok.update(description="The export, with a Content-Disposition file name.",
              headers={"Content-Disposition": {"schema": {"type": "string"}}},
              content=EXPORT_CONTENT)


@bp.get("/openapi.json")
@declare("openapi", (200, None))
def openapi() -> Response:
    """This document (no authentication needed)."""
    return jsonify(document(_amend))
