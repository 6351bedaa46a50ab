"""The schemas of the OpenAPI document (``openapi_spec``): objects and error responses.

Kept apart from the paths, which only refer to them, so each part stays readable.
OpenAPI 3.1 schemas are JSON Schema 2020-12: ``null`` is written as a type.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or ``null`` (``anyOf`` so that it also works around a ``$ref``)."""
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Schema], required: list[str] | None = None,
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
    "Error": obj({
        "error": {"type": "string", "description": "A short title such as 'Bad request'."},
        "detail": {"type": "string",
                   "description": "What went wrong and what to do next, in a sentence."},
    }),
    "LabelClass": obj({
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "key": {"type": ["string", "null"],
                "description": "Keyboard shortcut on the labelling page."},
        "colour": {"type": "string", "description": "CSS colour, e.g. '#1f77b4'."},
        "archived": {"type": "boolean"},
    }),
    "Counts": obj({
        "images": COUNT, "labelled": COUNT, "unlabelled": COUNT,
        "per_class": {"type": "object", "additionalProperties": COUNT,
                      "description": "Labelled images per class name."},
    }),
    "Project": obj({
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "classes": {"type": "array", "items": ref("LabelClass")},
        "counts": ref("Counts"),
    }),
    "Prediction": obj({
        "label": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    }),
    "Reason": obj({
        "strategy": {"type": "string",
                     "description": "Sampling strategy of the round that ranked the image."},
        "score": NUMBER_OR_NULL,
        "queue_rank": NUMBER_OR_NULL,
        "round": INT_OR_NULL,
        "round_trained": {"type": ["boolean", "null"], "description":
                          "Whether the ranking round trained a model (cold start does not)."},
        "summary": {"type": "string",
                    "description": "Why the image was chosen, in one plain sentence."},
        "probabilities": {"type": "array", "items": obj({
            "label": {"type": "string"}, "probability": {"type": "number"}})},
        "neighbours": {"type": "array", "items": obj({
            "image_id": {"type": "integer"}, "label": {"type": "string"},
            "similarity": {"type": "number"}})},
        "note": {"type": "string"},
    }, description="Why the queue served this image, and what the model thinks of it."),
    "ImageItem": obj({
        "image_id": {"type": "integer"},
        "image_url": {"type": "string"},
        "thumbnail_url": {"type": "string"},
        "original_name": {"type": "string"},
        "width": INT_OR_NULL,
        "height": INT_OR_NULL,
        "pixelated": PIXELATED,
        "prediction": nullable(ref("Prediction")),
        "reason": ref("Reason"),
    }),
    "GalleryItem": obj({
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
    "Annotation": obj({
        "annotation_id": {"type": "integer"},
        "image_id": {"type": "integer"},
        "label": {"type": "string"},
        "annotator": STRING_OR_NULL,
        "created_at": {"type": "string", "format": "date-time"},
        "undone_at": DATETIME_OR_NULL,
    }),
    "Job": obj({
        "job_id": {"type": "integer"},
        "kind": {"type": "string", "description": "e.g. 'embed' or 'retrain'."},
        "project_id": INT_OR_NULL,
        "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
        "progress": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "message": STRING_OR_NULL,
        "created_at": DATETIME_OR_NULL,
        "finished_at": DATETIME_OR_NULL,
    }),
    "Round": obj({
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
    "Stats": obj({
        "counts": obj({
            "images": COUNT, "labelled": COUNT, "unlabelled": COUNT,
            "per_class": {"type": "object", "additionalProperties": COUNT},
            "embedded": COUNT}, description="The project's counts plus embedded images."),
        "labels_until_next_round": INT_OR_NULL,
        "active_round": nullable(ref("Round")),
        "rounds": {"type": "array", "items": ref("Round")},
    }),
    "Settings": obj({
        "strategy": {"type": "string"},
        "retrain_every": {"type": "integer"},
        "strategies": {"type": "array", "items": obj({
            "name": {"type": "string"}, "help": {"type": "string"}})},
    }),
    "Dashboard": obj({
        "project": obj({"id": {"type": "integer"}, "name": {"type": "string"}}),
        "totals": obj({"images": COUNT, "labelled": COUNT, "unlabelled": COUNT,
                        "embedded": COUNT}),
        "classes": {"type": "array", "items": obj({
            "name": {"type": "string"}, "colour": {"type": "string"},
            "labelled": COUNT, "predicted": COUNT})},
        "curve": {"type": "array", "items": obj({
            "round": {"type": "integer"}, "n_labels": INT_OR_NULL,
            "accuracy": {"type": "number"}, "macro_f1": NUMBER_OR_NULL,
            "strategy": STRING_OR_NULL})},
        "latest_round": nullable(ref("Round")),
        "last_round": nullable(ref("Round")),
        "labels_until_next_round": INT_OR_NULL,
        "settings": ref("Settings"),
        "annotators": {"type": "array", "items": obj({
            "username": {"type": "string"}, "labels": COUNT, "last_hour": COUNT,
            # Over the last 7 days: labels kept, and active time from the labels' own
            # timestamps (labeler.reports); null when it cannot be measured.
            "recent_labels": COUNT,
            "per_hour": NUMBER_OR_NULL, "active_seconds": NUMBER_OR_NULL,
            "active_minutes": NUMBER_OR_NULL,
            "last_label_at": DATETIME_OR_NULL})},
        "jobs": {"type": "array", "items": ref("Job")},
        "any_job_active": {"type": "boolean"},
        "finetune": nullable(ref("FineTune")),
    }),
    "FineTune": obj({
        "at": {"type": "string", "format": "date-time"},
        "n_labels": COUNT,
        "frozen_accuracy": {"type": "number"},
        "finetuned_accuracy": {"type": "number"},
        "adopted": {"type": "boolean"},
        "pending": {"type": "boolean", "description":
                    "Adopted, and the pool is still being embedded with it."},
        "reason": {"type": "string"},
    }, description="The last fine-tune: both held-out accuracies and the verdict."),
    "Map": obj({
        "method": {"type": "string", "enum": ["pca", "umap"]},
        "explained_variance": {"type": "array", "items": {"type": "number"}},
        "classes": {"type": "array", "items": obj({
            "id": {"type": "integer"}, "name": {"type": "string"},
            "colour": {"type": "string"}, "archived": {"type": "boolean"}})},
        "images": COUNT,
        "empty": {"type": "boolean"},
        "message": {"type": "string"},
        "points": obj({
            "image_id": {"type": "array", "items": {"type": "integer"}},
            "x": {"type": "array", "items": {"type": "number"}},
            "y": {"type": "array", "items": {"type": "number"}},
            "label": {"type": "array", "items": {"type": "integer"},
                      "description": "Label class id, -1 when unlabelled."},
            "predicted": {"type": "array", "items": {"type": "integer"},
                          "description": "Predicted class id, -1 when none."},
        }, description="Parallel columns, one entry per embedded image."),
    }),
    "UploadReport": obj({
        "imported": COUNT,
        "duplicates": COUNT,
        "labelled": COUNT,
        "image_ids": {"type": "array", "items": {"type": "integer"}},
        "rejected": {"type": "array", "items": obj({
            "name": {"type": "string"}, "reason": {"type": "string"}})},
    }),
}

#: The error responses, each with an example detail of the kind the server writes.
RESPONSES: dict[str, Schema] = {
    name: {"description": description,
           "content": {"application/json": {"schema": ref("Error")}}}
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
