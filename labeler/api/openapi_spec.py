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

Schema = dict[str, Any]

#: Where error responses live in ``components.responses``, by status.
ERROR_RESPONSES: dict[int, str] = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    409: "Conflict", 413: "TooLarge",
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    """``schema`` or ``null`` (``anyOf`` so that it also works around a ``$ref``)."""
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(properties: dict[str, Schema], required: list[str] | None = None,
         description: str = "") -> Schema:
    """An object schema; every property is required unless ``required`` says otherwise."""
    schema: Schema = {"type": "object", "properties": properties,
                      "required": list(properties) if required is None else required}
    if description:
        schema["description"] = description
    return schema


STRING_OR_NULL: Schema = {"type": ["string", "null"]}
PIXELATED: Schema = {"type": "boolean", "description": "Smaller than pages draw it: show it "
                     "with crisp pixels (CSS image-rendering: pixelated), not smoothed."}
NUMBER_OR_NULL: Schema = {"type": ["number", "null"]}
INT_OR_NULL: Schema = {"type": ["integer", "null"]}
DATETIME_OR_NULL: Schema = {"type": ["string", "null"], "format": "date-time"}
COUNT: Schema = {"type": "integer", "minimum": 0}

SCHEMAS: dict[str, Schema] = {
    "Error": _obj({
        "error": {"type": "string", "description": "A short title such as 'Bad request'."},
        "detail": {"type": "string",
                   "description": "What went wrong and what to do next, in a sentence."},
    }),
    "LabelClass": _obj({
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "key": {"type": ["string", "null"],
                "description": "Keyboard shortcut on the labelling page."},
        "colour": {"type": "string", "description": "CSS colour, e.g. '#1f77b4'."},
        "archived": {"type": "boolean"},
    }),
    "Counts": _obj({
        "images": COUNT, "labelled": COUNT, "unlabelled": COUNT,
        "per_class": {"type": "object", "additionalProperties": COUNT,
                      "description": "Labelled images per class name."},
    }),
    "Project": _obj({
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "classes": {"type": "array", "items": _ref("LabelClass")},
        "counts": _ref("Counts"),
    }),
    "Prediction": _obj({
        "label": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    }),
    "Reason": _obj({
        "strategy": {"type": "string",
                     "description": "Sampling strategy of the round that ranked the image."},
        "score": NUMBER_OR_NULL,
        "queue_rank": NUMBER_OR_NULL,
        "round": INT_OR_NULL,
        "round_trained": {"type": ["boolean", "null"], "description":
                          "Whether the ranking round trained a model (cold start does not)."},
        "summary": {"type": "string",
                    "description": "Why the image was chosen, in one plain sentence."},
        "probabilities": {"type": "array", "items": _obj({
            "label": {"type": "string"}, "probability": {"type": "number"}})},
        "neighbours": {"type": "array", "items": _obj({
            "image_id": {"type": "integer"}, "label": {"type": "string"},
            "similarity": {"type": "number"}})},
        "note": {"type": "string"},
    }, description="Why the queue served this image, and what the model thinks of it."),
    "ImageItem": _obj({
        "image_id": {"type": "integer"},
        "image_url": {"type": "string"},
        "thumbnail_url": {"type": "string"},
        "original_name": {"type": "string"},
        "width": INT_OR_NULL,
        "height": INT_OR_NULL,
        "pixelated": PIXELATED,
        "prediction": _nullable(_ref("Prediction")),
        "reason": _ref("Reason"),
    }),
    "GalleryItem": _obj({
        "image_id": {"type": "integer"},
        "thumbnail_url": {"type": "string"},
        "detail_url": {"type": "string"},
        "original_name": {"type": "string"},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
        "pixelated": PIXELATED,
        "label": STRING_OR_NULL,
        "label_colour": STRING_OR_NULL,
        "predicted": STRING_OR_NULL,
        "predicted_colour": STRING_OR_NULL,
        "confidence": NUMBER_OR_NULL,
        "suspected_error": {"type": "boolean"},
        "duplicate_group": INT_OR_NULL,
    }),
    "Annotation": _obj({
        "annotation_id": {"type": "integer"},
        "image_id": {"type": "integer"},
        "label": {"type": "string"},
        "annotator": STRING_OR_NULL,
        "created_at": {"type": "string", "format": "date-time"},
        "undone_at": DATETIME_OR_NULL,
    }),
    "Job": _obj({
        "job_id": {"type": "integer"},
        "kind": {"type": "string", "description": "e.g. 'embed' or 'retrain'."},
        "project_id": INT_OR_NULL,
        "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
        "progress": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "message": STRING_OR_NULL,
        "created_at": DATETIME_OR_NULL,
        "finished_at": DATETIME_OR_NULL,
    }),
    "Round": _obj({
        "number": {"type": "integer"},
        "status": {"type": "string",
                   "enum": ["queued", "running", "succeeded", "failed", "skipped"],
                   "description": "'skipped': too few labels to train; the round only "
                                  "ranked the pool for a cold start."},
        "strategy": STRING_OR_NULL,
        "n_labels": INT_OR_NULL,
        "accuracy": NUMBER_OR_NULL,
        "macro_f1": NUMBER_OR_NULL,
        "per_class": {"description": "Per-class metrics of the round, when measured."},
        "labels": {"description": "Class names in the order of the confusion matrix."},
        "confusion": {"description": "Confusion matrix (rows: true, columns: predicted)."},
        "duration_s": NUMBER_OR_NULL,
        "message": STRING_OR_NULL,
        "created_at": DATETIME_OR_NULL,
    }, description="One retrain round and its cross-validated metrics."),
    "Stats": _obj({
        "counts": _obj({
            "images": COUNT, "labelled": COUNT, "unlabelled": COUNT,
            "per_class": {"type": "object", "additionalProperties": COUNT},
            "embedded": COUNT}, description="The project's counts plus embedded images."),
        "labels_until_next_round": INT_OR_NULL,
        "active_round": _nullable(_ref("Round")),
        "rounds": {"type": "array", "items": _ref("Round")},
    }),
    "Settings": _obj({
        "strategy": {"type": "string"},
        "retrain_every": {"type": "integer"},
        "strategies": {"type": "array", "items": _obj({
            "name": {"type": "string"}, "help": {"type": "string"}})},
    }),
    "Dashboard": _obj({
        "project": _obj({"id": {"type": "integer"}, "name": {"type": "string"}}),
        "totals": _obj({"images": COUNT, "labelled": COUNT, "unlabelled": COUNT,
                        "embedded": COUNT}),
        "classes": {"type": "array", "items": _obj({
            "name": {"type": "string"}, "colour": {"type": "string"},
            "labelled": COUNT, "predicted": COUNT})},
        "curve": {"type": "array", "items": _obj({
            "round": {"type": "integer"}, "n_labels": INT_OR_NULL,
            "accuracy": {"type": "number"}, "macro_f1": NUMBER_OR_NULL,
            "strategy": STRING_OR_NULL})},
        "latest_round": _nullable(_ref("Round")),
        "last_round": _nullable(_ref("Round")),
        "labels_until_next_round": INT_OR_NULL,
        "settings": _ref("Settings"),
        "annotators": {"type": "array", "items": _obj({
            "username": {"type": "string"}, "labels": COUNT, "last_hour": COUNT,
            # Over the last 7 days: labels kept, and active time from the labels' own
            # timestamps (labeler.reports); null when it cannot be measured.
            "recent_labels": COUNT,
            "per_hour": NUMBER_OR_NULL, "active_seconds": NUMBER_OR_NULL,
            "active_minutes": NUMBER_OR_NULL,
            "last_label_at": DATETIME_OR_NULL})},
        "jobs": {"type": "array", "items": _ref("Job")},
        "any_job_active": {"type": "boolean"},
    }),
    "Map": _obj({
        "method": {"type": "string", "enum": ["pca", "umap"]},
        "explained_variance": {"type": "array", "items": {"type": "number"}},
        "classes": {"type": "array", "items": _obj({
            "id": {"type": "integer"}, "name": {"type": "string"},
            "colour": {"type": "string"}, "archived": {"type": "boolean"}})},
        "images": COUNT,
        "empty": {"type": "boolean"},
        "message": {"type": "string"},
        "points": _obj({
            "image_id": {"type": "array", "items": {"type": "integer"}},
            "x": {"type": "array", "items": {"type": "number"}},
            "y": {"type": "array", "items": {"type": "number"}},
            "label": {"type": "array", "items": {"type": "integer"},
                      "description": "Label class id, -1 when unlabelled."},
            "predicted": {"type": "array", "items": {"type": "integer"},
                          "description": "Predicted class id, -1 when none."},
        }, description="Parallel columns, one entry per embedded image."),
    }),
    "UploadReport": _obj({
        "imported": COUNT,
        "duplicates": COUNT,
        "labelled": COUNT,
        "image_ids": {"type": "array", "items": {"type": "integer"}},
        "rejected": {"type": "array", "items": _obj({
            "name": {"type": "string"}, "reason": {"type": "string"}})},
    }),
}

#: The error responses, each with an example detail of the kind the server writes.
RESPONSES: dict[str, Schema] = {
    name: {"description": description,
           "content": {"application/json": {"schema": _ref("Error")}}}
    for name, description in (
        ("BadRequest", "Bad input: malformed JSON, a missing field, a wrong type, an unknown "
                       "class, or (browser sessions) a missing X-CSRFToken header."),
        ("Unauthorized", "Not logged in and no valid bearer token."),
        ("Forbidden", "Only project leads can do this."),
        ("NotFound", "No such project, image, annotation or job."),
        ("Conflict", "A state conflict: the image is leased to someone else, a job of this "
                     "kind is already running, or the name is taken."),
        ("TooLarge", "The upload exceeds the server's MAX_UPLOAD_MB."),
    )
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
            (200, _json(_obj({"username": {"type": "string"},
                              "role": {"type": "string", "enum": ["lead", "annotator"]}}),
                        "The caller.")), ())},
        "/projects": {
            "get": _operation("listProjects", "All projects with their classes and counts.",
                              (200, _json(_obj({"projects": {"type": "array",
                                                             "items": _ref("Project")}}),
                                          "The projects, by name.")), ()),
            "post": _operation(
                "createProject", "Create a project (leads only).",
                (201, _json(_ref("Project"), "The new project.")), (*WRITE, 403, 409),
                body=_json_body(_obj({"name": {"type": "string"},
                                      "classes": {"type": "array",
                                                  "items": {"type": "string"}}},
                                     ["name"]))),
        },
        "/projects/{project_id}/stats": {"get": _operation(
            "projectStats", "Counts per class, labelled/unlabelled/embedded, and the rounds.",
            (200, _json(_ref("Stats"), "The project's statistics.")), (404,),
            parameters=[PROJECT_ID])},
        "/projects/{project_id}/images": {
            "get": _operation(
                "listImages", "A keyset-paginated, filtered page of the project's images; "
                "follow next_cursor with after=.",
                (200, _json(_obj({"items": {"type": "array", "items": _ref("GalleryItem")},
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
                (200, _json(_ref("UploadReport"), "What was imported and what was rejected.")),
                (*WRITE, 403, 404, 413), parameters=[PROJECT_ID],
                body={"required": True, "content": {"multipart/form-data": {"schema": _obj({
                    "files": {"type": "array",
                              "items": {"type": "string", "contentMediaType":
                                        "application/octet-stream"}},
                    "labels_from_folders": {"type": "string", "description":
                                            "'true' to label images by their zip folder."},
                }, ["files"])}}}),
        },
        "/projects/{project_id}/retrain": {"post": _operation(
            "retrain", "Start a retrain round in the background (leads only).",
            (202, _json(_obj({"job_id": {"type": "integer"},
                              "status": {"type": "string"}}), "The queued job.")),
            (*WRITE, 403, 404, 409), parameters=[PROJECT_ID])},
        "/jobs/{job_id}": {"get": _operation(
            "jobStatus", "A background job's status, progress and message.",
            (200, _json(_ref("Job"), "The job.")), (404,),
            parameters=[_path_param("job_id", "The job's id.")])},
        "/projects/{project_id}/next": {"get": _operation(
            "nextImages", "The next images for the caller, each leased to them for 10 minutes.",
            (200, _json(_obj({"items": {"type": "array", "items": _ref("ImageItem")}}),
                        "The leased images (empty when the queue is exhausted).")),
            (400, 404), parameters=[
                PROJECT_ID,
                _query("n", {"type": "integer", "minimum": 1, "maximum": 50, "default": 1},
                       "How many images.")])},
        "/projects/{project_id}/annotations": {"post": _operation(
            "createAnnotation", "Label an image with a class name.",
            (201, _json(_ref("Annotation"), "The new annotation.")), (*WRITE, 404, 409),
            parameters=[PROJECT_ID],
            body=_json_body(_obj({"image_id": {"type": "integer"},
                                  "label": {"type": "string"}})))},
        "/annotations/{annotation_id}": {"delete": _operation(
            "undoAnnotation", "Undo an annotation (annotators: their own only).",
            (200, _json(_ref("Annotation"), "The undone annotation.")), (*WRITE, 404),
            parameters=[_path_param("annotation_id", "The annotation's id.")])},
        "/projects/{project_id}/skip": {"post": _operation(
            "skipImage", "Put an image back at the end of the queue and release the lease.",
            (200, _json(_obj({"skipped": {"type": "boolean", "const": True}}), "Skipped.")),
            (*WRITE, 404), parameters=[PROJECT_ID],
            body=_json_body(_obj({"image_id": {"type": "integer"}})))},
        "/projects/{project_id}/bulk-label": {"post": _operation(
            "bulkLabel", "Label many images at once, with one class or each with its "
            "prediction; all or nothing.",
            (200, _json(_obj({"updated": COUNT, "items": {"type": "array", "items": _obj({
                "image_id": {"type": "integer"}, "label": {"type": "string"},
                "label_colour": {"type": "string"}})}}), "The labelled images.")),
            (*WRITE, 404), parameters=[PROJECT_ID],
            body=_json_body(_obj({
                "image_ids": {"type": "array", "items": {"type": "integer"},
                              "minItems": 1, "maxItems": 500},
                "label": {"type": "string"},
                "confirm_predictions": {"type": "boolean"},
            }, ["image_ids"])))},
        "/projects/{project_id}/dashboard": {"get": _operation(
            "dashboard", "Everything the lead's dashboard draws (leads only).",
            (200, _json(_ref("Dashboard"), "The dashboard.")), (403, 404),
            parameters=[PROJECT_ID])},
        "/projects/{project_id}/settings": {"post": _operation(
            "trainingSettings", "Change the sampling strategy and/or retrain interval "
            "(leads only).",
            (200, _json(_ref("Settings"), "The settings now in force.")),
            (*WRITE, 403, 404), parameters=[PROJECT_ID],
            body=_json_body(_obj({"strategy": {"type": "string"},
                                  "retrain_every": {"type": "integer", "minimum": 1,
                                                    "maximum": 100000}}, [])))},
        "/projects/{project_id}/map": {"get": _operation(
            "embeddingMap", "Every embedded image as a 2-D point, in columns.",
            (200, _json(_ref("Map"), "The map.")), (400, 404), parameters=[
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
