"""The map's t-SNE layout as a background job: queued when vectors change, or when asked for.

The layout itself is ``embedding_map.compute_tsne_layout``; this module decides when to
queue it (after an embedding stored vectors, and when the map is opened without a layout
for the current vectors) and turns the map's "missing" into what the page shows: the
layout is being computed, or it failed and why.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from ..embedding_map import (
    TSNE_COMPUTING,
    TSNE_FAILED,
    TSNE_MISSING,
    compute_tsne_layout,
    map_payload,
)
from ..extensions import db
from ..models import Job, JobStatus, Project, utcnow
from ..project_vectors import current_vectors
from .backend import runner
from .kinds import JobKind
from .rows import JobAlreadyRunning

# A failed layout is tried again when the vectors change, or after this long (a failure
# may have been a restart in the middle of the job rather than the data).
RETRY_FAILED_AFTER = timedelta(minutes=10)


def latest_map_job(project: Project) -> Job | None:
    """The project's most recent map layout job, whatever its status."""
    return db.session.scalar(select(Job).where(Job.project_id == project.id,
                                               Job.kind == JobKind.MAP)
                             .order_by(Job.id.desc()).limit(1))


def submit_map_layout(app: Flask, project: Project) -> Job | None:
    """Queue the t-SNE layout of ``project``'s vectors (None when one is already queued)."""
    try:
        return runner(app).submit(JobKind.MAP, project.id, compute_tsne_layout)
    except JobAlreadyRunning:
        return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite


def _retry_due(project: Project, failed: Job) -> bool:
    """Whether a failed layout job should run again now."""
    finished = _aware(failed.finished_at or failed.created_at)
    if utcnow() - finished > RETRY_FAILED_AFTER:
        return True
    store = current_vectors(project)
    if store is None or not store.vectors_path.exists():
        return False
    changed = datetime.fromtimestamp(store.vectors_path.stat().st_mtime, tz=UTC)
    return changed > _aware(failed.created_at)


def map_with_layout(app: Flask, project: Project, method: str = "auto") -> dict[str, Any]:
    """The map payload, with the t-SNE layout queued if it is missing.

    ``tsne`` in the answer is then ``"computing"`` (queued or running) or ``"failed"``
    (with ``tsne_message`` saying why), instead of ``"missing"``.
    """
    payload = map_payload(project, method)
    payload["tsne_message"] = ""
    if payload["tsne"] != TSNE_MISSING:
        return payload
    job = latest_map_job(project)
    if job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        payload["tsne"] = TSNE_COMPUTING
    elif job is not None and job.status == JobStatus.FAILED and not _retry_due(project, job):
        payload["tsne"] = TSNE_FAILED
        payload["tsne_message"] = job.message or ""
    else:
        submit_map_layout(app, project)
        payload["tsne"] = TSNE_COMPUTING
    return payload
