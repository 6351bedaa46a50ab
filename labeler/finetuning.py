"""Fine-tuning a project's backbone on its labels, and moving the project onto it.

``labeler finetune`` and the dashboard's button run `finetune_project` as a job of kind
``finetune``. It trains the top of the backbone (`labeler.embeddings.finetune`), records
both held-out figures on the project (``settings["finetune"]``) and in the job's message,
and adopts the fine-tuned backbone only when it beats the frozen one.

Adopting is moving to a new embedding space. The fine-tuned model is saved under
``backbones/finetuned/`` in Keras' own ``.keras`` format (loaded in safe mode, no pickle),
recorded as the project's *pending* backbone, and the pool is embedded into its space. The
current vectors keep serving rounds, the queue and the map until every image has a vector
in the new space; only then does the project switch, and a round retrains the head there.
A job stopped while re-embedding leaves the pending backbone and the vectors written so
far: `resume_switch` (queued by the scheduler, or ``labeler finetune --resume``) embeds
only what is missing, as the embed job does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from .embeddings.finetune import FineTuneSettings, finetune
from .errors import LabelerError
from .extensions import db
from .learning.heads import NotEnoughLabels
from .models import Image, LabelClass, Project
from .project_vectors import (
    embed_images,
    get_backbone,
    images_missing_vectors,
    project_backbone_name,
    vector_store,
)
from .storage import BlobStore, data_root
from .training import run_round

log = logging.getLogger(__name__)

# Shares of the job's progress bar: training and the verdict, then re-embedding the pool.
_TRAIN_SHARE, _EMBED_SHARE = 0.6, 0.35


def labelled_images(project: Project) -> tuple[list[str], list[str]]:
    """(stored file, class name) of every image labelled with a class that is not archived."""
    rows = db.session.execute(
        select(Image.sha256, Image.format, LabelClass.name)
        .join(LabelClass, LabelClass.id == Image.label_class_id)
        .where(Image.project_id == project.id, LabelClass.archived.is_(False))
        .order_by(Image.id)
    ).all()
    blobs = BlobStore(data_root())
    return [str(blobs.image_path(sha, fmt)) for sha, fmt, _ in rows], [r[2] for r in rows]


def finetune_record(project: Project) -> dict[str, Any] | None:
    """The last fine-tune's figures and verdict (None if the project was never fine-tuned)."""
    return (project.settings or {}).get("finetune")


def pending_backbone(project: Project) -> str | None:
    """The adopted fine-tuned backbone the pool is still being embedded with, if any."""
    return (project.settings or {}).get("pending_backbone")


def _base_backbone(project: Project) -> str:
    """The backbone to fine-tune: the project's, or the one its fine-tuned backbone came from.

    A second fine-tune (after more labels) starts again from the ImageNet weights, whose
    layer names say where the top stages begin.
    """
    current, record = project_backbone_name(project), finetune_record(project) or {}
    return record.get("base_backbone", current) if record.get("backbone") == current else current


def _update_settings(project: Project, **changes: Any) -> None:
    settings = dict(project.settings or {})
    for key, value in changes.items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    project.settings = settings  # reassign: JSON columns do not track in-place changes
    db.session.commit()


def finetune_project(progress: Callable[..., None], project_id: int,
                     **overrides: Any) -> str:
    """Job: fine-tune the project's backbone, judge it, and adopt it only if it wins.

    Args:
        progress: The job's progress callback.
        project_id: The project.
        **overrides: `FineTuneSettings` fields to change (e.g. ``max_epochs``).

    Returns:
        The job's summary: both held-out accuracies and what was done.

    Raises:
        LabelerError: Too few labels, or the project is gone; the message says what to do.
    """
    project = db.session.get(Project, project_id)
    if project is None:
        raise LabelerError(f"Project {project_id} no longer exists.")
    if pending_backbone(project):
        return resume_switch(progress, project_id)
    name = _base_backbone(project)
    backbone = get_backbone(name)
    paths, labels = labelled_images(project)
    settings = replace(FineTuneSettings(), **overrides)
    progress(0.0, f"Fine-tuning {name} on {len(paths)} labelled images", force=True)
    try:
        result = finetune(backbone, paths, labels, settings,
                          progress=lambda done, message: progress(_TRAIN_SHARE * done, message))
    except (NotEnoughLabels, ValueError) as exc:
        raise LabelerError(str(exc)) from exc
    record = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_backbone": name,
        "n_labels": len(paths),
        "split": list(result.split),
        "frozen_accuracy": result.frozen_accuracy,
        "finetuned_accuracy": result.finetuned_accuracy,
        "adopted": result.adopted,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "seconds": {k: round(v, 1) for k, v in result.seconds.items()},
        "reason": result.reason,
    }
    if not result.adopted:
        _update_settings(project, finetune=record)
        return result.reason
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder = data_root() / "backbones" / "finetuned"
    path = result.save(folder / f"project-{project.id}-{stamp}.keras")
    record["backbone"] = str(path)
    _update_settings(project, finetune=record, pending_backbone=str(path))
    return f"{result.reason} {complete_switch(progress, project)}"


def resume_switch(progress: Callable[..., None], project_id: int) -> str:
    """Job: finish moving the project to its pending fine-tuned backbone (if it has one)."""
    project = db.session.get(Project, project_id)
    if project is None:
        raise LabelerError(f"Project {project_id} no longer exists.")
    if not pending_backbone(project):
        return "Nothing to resume: no fine-tuned backbone is waiting for its embeddings."
    return complete_switch(progress, project)


def complete_switch(progress: Callable[..., None], project: Project) -> str:
    """Embed the pool with the pending backbone, then switch to it and retrain the head.

    The project's current space serves until the new one holds every readable image.
    """
    name = pending_backbone(project)
    if name is None:
        raise LabelerError("No fine-tuned backbone is waiting; run `labeler finetune` first.")
    backbone = get_backbone(name)
    store = vector_store(project, backbone)
    missing = images_missing_vectors(project, store)
    start = _TRAIN_SHARE

    def report(done: int) -> None:
        progress(start + _EMBED_SHARE * done / len(missing),
                 f"Embedding with the fine-tuned backbone: {done} of {len(missing)} images "
                 "(the current model serves until this is done)")

    failures = embed_images(backbone, store, missing, report) if missing else []
    if failures:  # the same files fail in the old space; they have no vector in either
        log.warning("fine-tune: %d unreadable images in project %s", len(failures), project.id)
    _update_settings(project, backbone=name, embedding_space=asdict(store.space),
                     pending_backbone=None)
    progress(start + _EMBED_SHARE, "Retraining the head on the fine-tuned embeddings",
             force=True)
    round_summary = run_round(lambda *a, **k: None, project.id)
    return (f"Re-embedded {len(missing) - len(failures)} images with the fine-tuned backbone "
            f"and switched to it. {round_summary}")
