"""The OpenAPI 3.1 document of the JSON API under ``/api/v1``, built as a Python dict.

A dict in a module (rather than a JSON data file) travels inside the wheel with no package
data to declare, and the helpers below keep the many error responses consistent.
``tests/test_openapi.py`` keeps the document true: it checks that every route of the API
blueprint is documented (and nothing else), and validates real responses against the
response schemas. OpenAPI 3.1 schemas are JSON Schema 2020-12, so ``null`` is written as a
type (``["string", "null"]``) and the schemas validate with plain ``jsonschema``.
"""

from __future__ import annotations

import copy
from typing import Any

from .openapi_schemas import (
    COUNT,
    RESPONSES,
    SCHEMAS,
    STRING_OR_NULL,
    Schema,
    obj,
    ref,
)

#: Where error responses live in ``components.responses``, by status.
ERROR_RESPONSES: dict[int, str] = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    409: "Conflict", 413: "TooLarge",
}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _path_param(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "integer"}}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


def _operation(operation_id: str, summary: str, ok: tuple[int, Schema], errors: tuple[int, ...],
               *, parameters: list[Schema] | None = None, body: Schema | None = None,
               public: bool = False) -> Schema:
    """One operation; 401 is added to every authenticated one."""
    status, response = ok
    op: Schema = {"operationId": operation_id, "summary": summary,
                  "responses": {str(status): response}}
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    codes = set(errors) if public else set(errors) | {401}
    for code in sorted(codes):
        op["responses"][str(code)] = {"$ref": f"#/components/responses/{ERROR_RESPONSES[code]}"}
    if public:
        op["security"] = []
    return op


def _json_body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


PROJECT_ID = _path_param("project_id", "The project's id.")
# Browser sessions must send the CSRF token on state-changing requests (400 otherwise).
WRITE = (400,)


def build() -> dict[str, Any]:
    """The OpenAPI document of ``/api/v1`` (a fresh copy each call).

    Returns:
        A JSON-ready dict, OpenAPI 3.1.
    """
    paths: dict[str, Any] = {
        "/openapi.json": {"get": _operation(
            "openapi", "This document (no authentication needed).",
            (200, _json({"type": "object"}, "The OpenAPI document.")), (), public=True)},
        "/me": {"get": _operation(
            "me", "Who the caller is.",
            (200, _json(obj({"username": {"type": "string"},
                              "role": {"type": "string", "enum": ["lead", "annotator"]}}),
                        "The caller.")), ())},
        "/projects": {
            "get": _operation("listProjects", "All projects with their classes and counts.",
                              (200, _json(obj({"projects": {"type": "array",
                                                             "items": ref("Project")}}),
                                          "The projects, by name.")), ()),
            "post": _operation(
                "createProject", "Create a project (leads only).",
                (201, _json(ref("Project"), "The new project.")), (*WRITE, 403, 409),
                body=_json_body(obj({"name": {"type": "string"},
                                      "classes": {"type": "array",
                                                  "items": {"type": "string"}}},
                                     ["name"]))),
        },
        "/projects/{project_id}/stats": {"get": _operation(
            "projectStats", "Counts per class, labelled/unlabelled/embedded, and the rounds.",
            (200, _json(ref("Stats"), "The project's statistics.")), (404,),
            parameters=[PROJECT_ID])},
        "/projects/{project_id}/images": {
            "get": _operation(
                "listImages", "A keyset-paginated, filtered page of the project's images; "
                "follow next_cursor with after=.",
                (200, _json(obj({"items": {"type": "array", "items": ref("GalleryItem")},
                                  "next_cursor": STRING_OR_NULL, "total": COUNT}),
                            "One page of images.")), (400, 404),
                parameters=[
                    PROJECT_ID,
                    _query("label", {"type": "string"},
                           "A class name, 'labelled' or 'unlabelled'."),
                    _query("predicted", {"type": "string"}, "A predicted class name."),
                    _query("min_confidence", {"type": "number", "minimum": 0, "maximum": 1},
                           "Lowest prediction confidence."),
                    _query("max_confidence", {"type": "number", "minimum": 0, "maximum": 1},
                           "Highest prediction confidence."),
                    _query("suspected", {"type": "boolean"},
                           "Only images whose label the model doubts."),
                    _query("duplicate_group", {"type": "string"},
                           "A duplicate group number, or 'any'."),
                    _query("sort", {"type": "string", "enum": ["id", "confidence"]},
                           "Import order (default) or least confident first."),
                    _query("after", {"type": "string"}, "The previous page's next_cursor."),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200,
                                     "default": 100}, "Images per page."),
                ]),
            "post": _operation(
                "uploadImages", "Upload images or zip archives (leads only); per-file results.",
                (200, _json(ref("UploadReport"), "What was imported and what was rejected.")),
                (*WRITE, 403, 404, 413), parameters=[PROJECT_ID],
                body={"required": True, "content": {"multipart/form-data": {"schema": obj({
                    "files": {"type": "array",
                              "items": {"type": "string", "contentMediaType":
                                        "application/octet-stream"}},
                    "labels_from_folders": {"type": "string", "description":
                                            "'true' to label images by their zip folder."},
                }, ["files"])}}}),
        },
        "/projects/{project_id}/retrain": {"post": _operation(
            "retrain", "Start a retrain round in the background (leads only).",
            (202, _json(obj({"job_id": {"type": "integer"},
                              "status": {"type": "string"}}), "The queued job.")),
            (*WRITE, 403, 404, 409), parameters=[PROJECT_ID])},
        "/projects/{project_id}/finetune": {"post": _operation(
            "finetune", "Start fine-tuning the project's backbone in the background: adopted "
            "only if it beats the frozen backbone on held-out labels (leads only).",
            (202, _json(obj({"job_id": {"type": "integer"},
                              "status": {"type": "string"}}), "The queued job.")),
            (*WRITE, 403, 404, 409), parameters=[PROJECT_ID])},
        "/jobs/{job_id}": {"get": _operation(
            "jobStatus", "A background job's status, progress and message.",
            (200, _json(ref("Job"), "The job.")), (404,),
            parameters=[_path_param("job_id", "The job's id.")])},
        "/projects/{project_id}/next": {"get": _operation(
            "nextImages", "The next images for the caller, each leased to them for 10 minutes.",
            (200, _json(obj({"items": {"type": "array", "items": ref("ImageItem")}}),
                        "The leased images (empty when the queue is exhausted).")),
            (400, 404), parameters=[
                PROJECT_ID,
                _query("n", {"type": "integer", "minimum": 1, "maximum": 50, "default": 1},
                       "How many images.")])},
        "/projects/{project_id}/annotations": {"post": _operation(
            "createAnnotation", "Label an image with a class name.",
            (201, _json(ref("Annotation"), "The new annotation.")), (*WRITE, 404, 409),
            parameters=[PROJECT_ID],
            body=_json_body(obj({"image_id": {"type": "integer"},
                                  "label": {"type": "string"}})))},
        "/annotations/{annotation_id}": {"delete": _operation(
            "undoAnnotation", "Undo an annotation (annotators: their own only).",
            (200, _json(ref("Annotation"), "The undone annotation.")), (*WRITE, 404),
            parameters=[_path_param("annotation_id", "The annotation's id.")])},
        "/projects/{project_id}/skip": {"post": _operation(
            "skipImage", "Put an image back at the end of the queue and release the lease.",
            (200, _json(obj({"skipped": {"type": "boolean", "const": True}}), "Skipped.")),
            (*WRITE, 404), parameters=[PROJECT_ID],
            body=_json_body(obj({"image_id": {"type": "integer"}})))},
        "/projects/{project_id}/bulk-label": {"post": _operation(
            "bulkLabel", "Label many images at once, with one class or each with its "
            "prediction; all or nothing.",
            (200, _json(obj({"updated": COUNT, "items": {"type": "array", "items": obj({
                "image_id": {"type": "integer"}, "label": {"type": "string"},
                "label_colour": {"type": "string"}})}}), "The labelled images.")),
            (*WRITE, 404), parameters=[PROJECT_ID],
            body=_json_body(obj({
                "image_ids": {"type": "array", "items": {"type": "integer"},
                              "minItems": 1, "maxItems": 500},
                "label": {"type": "string"},
                "confirm_predictions": {"type": "boolean"},
            }, ["image_ids"])))},
        "/projects/{project_id}/dashboard": {"get": _operation(
            "dashboard", "Everything the lead's dashboard draws (leads only).",
            (200, _json(ref("Dashboard"), "The dashboard.")), (403, 404),
            parameters=[PROJECT_ID])},
        "/projects/{project_id}/settings": {"post": _operation(
            "trainingSettings", "Change the sampling strategy and/or retrain interval "
            "(leads only).",
            (200, _json(ref("Settings"), "The settings now in force.")),
            (*WRITE, 403, 404), parameters=[PROJECT_ID],
            body=_json_body(obj({"strategy": {"type": "string"},
                                  "retrain_every": {"type": "integer", "minimum": 1,
                                                    "maximum": 100000}}, [])))},
        "/projects/{project_id}/map": {"get": _operation(
            "embeddingMap", "Every embedded image as a 2-D point, in columns.",
            (200, _json(ref("Map"), "The map.")), (400, 404), parameters=[
                PROJECT_ID,
                _query("method", {"type": "string", "enum": ["pca", "umap"],
                                  "default": "pca"},
                       "Projection; 'umap' needs the umap-learn package.")])},
        "/projects/{project_id}/export": {"get": _operation(
            "export", "The project's labels (csv, jsonl), images by class (folders, a zip) "
            "or trained classifier (model, one .keras file), as a download.",
            (200, {"description": "The export, with a Content-Disposition file name.",
                   "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
                   "content": {
                       "text/csv": {"schema": {"type": "string"}},
                       "application/x-ndjson": {"schema": {"type": "string"}},
                       "application/zip": {"schema": {
                           "type": "string", "contentMediaType": "application/zip"}},
                       "application/octet-stream": {"schema": {
                           "type": "string",
                           "contentMediaType": "application/octet-stream"}},
                   }}),
            (400, 403, 404), parameters=[
                PROJECT_ID,
                {"name": "format", "in": "query", "required": True,
                 "description": "What to export (leads only).",
                 "schema": {"type": "string", "enum": ["csv", "jsonl", "folders", "model"]}},
                _query("include_predictions", {"type": "boolean"},
                       "csv and jsonl: add predicted class and confidence, and rows for "
                       "unlabelled images."),
                _query("val_split", {"type": "number", "exclusiveMinimum": 0,
                                     "exclusiveMaximum": 1},
                       "folders: the fraction of each class put in val/ (the rest in train/)."),
            ])},
    }
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "labeler API",
            "version": "1",
            "description": "Active-learning image labelling. Errors are JSON "
                           "{\"error\", \"detail\"} with the status that fits.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerToken": []}, {"session": [], "csrfToken": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": RESPONSES,
            "securitySchemes": {
                "bearerToken": {"type": "http", "scheme": "bearer", "description":
                                "A token from `labeler token create USERNAME`."},
                "session": {"type": "apiKey", "in": "cookie", "name": "session",
                            "description": "The browser's login session."},
                "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                              "description": "With a session: the page's CSRF token, "
                                             "required on POST and DELETE."},
            },
        },
    }
    return copy.deepcopy(document)
