"""The API's objects as dicts of their response models (``labeler.api.schemas``).

Timestamps stay datetimes here: the models serialise them, UTC with the offset.
"""

from __future__ import annotations

from typing import Any

from flask import url_for

from ..explain import explain
from ..gallery import pixelated
from ..models import Annotation, Image, Job, LabelClass, ModelRound, Project
from ..projects import project_counts


def label_class(c: LabelClass) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "key": c.key, "colour": c.colour,
            "archived": c.archived}


def project(p: Project) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "classes": [label_class(c) for c in p.classes],
            "counts": project_counts(p)}


def image_item(p: Project, image: Image, head: Any | None = None,
               names: dict[int, str] | None = None) -> dict[str, Any]:
    """An image to label, with the model's guess and why it was chosen.

    ``names`` (class id → name) saves a query per item when serialising a batch.
    """
    names = names if names is not None else {c.id: c.name for c in p.classes}
    prediction = None
    if image.predicted_class_id in names and image.confidence is not None:
        prediction = {"label": names[image.predicted_class_id], "confidence": image.confidence}
    return {
        "image_id": image.id,
        "image_url": url_for("images.display", image_id=image.id),
        "thumbnail_url": url_for("images.thumbnail", image_id=image.id),
        "original_name": image.original_name,
        "width": image.width,
        "height": image.height,
        "pixelated": pixelated(image),
        "prediction": prediction,
        "reason": explain(p, image, head=head, names=names),
    }


def annotation(a: Annotation) -> dict[str, Any]:
    return {"annotation_id": a.id, "image_id": a.image_id, "label": a.label_class.name,
            "annotator": a.annotator.username if a.annotator else None,
            "created_at": a.created_at, "undone_at": a.undone_at}


def job(j: Job) -> dict[str, Any]:
    return {"job_id": j.id, "kind": j.kind, "project_id": j.project_id, "status": j.status,
            "progress": j.progress, "message": j.message,
            "created_at": j.created_at, "finished_at": j.finished_at}


def model_round(r: ModelRound) -> dict[str, Any]:
    metrics = r.metrics or {}
    return {"number": r.number, "status": r.status, "strategy": r.strategy,
            "n_labels": r.n_labels, "accuracy": metrics.get("accuracy"),
            "macro_f1": metrics.get("macro_f1"), "per_class": metrics.get("per_class"),
            "labels": metrics.get("labels"), "confusion": metrics.get("confusion"),
            "label_quality": metrics.get("label_quality"),
            "calibration": metrics.get("calibration"),
            "duration_s": r.duration_s, "message": r.message,
            "created_at": r.created_at}
