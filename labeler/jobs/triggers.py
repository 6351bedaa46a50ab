"""What starts a retrain round: a lead's button, or N new labels once the cadence allows.

The round itself is ``labeler.training.run_round``; this module decides when to queue it
(on the app's job backend), so that training knows nothing of jobs.
"""

from __future__ import annotations

import time

from flask import Flask
from sqlalchemy import select

from ..cache import PACING, app_cache
from ..extensions import db
from ..models import Job, JobStatus, Project
from ..project_vectors import current_vectors
from ..round_cadence import project_min_round_interval_s, round_wait_s
from ..training import labels_until_next_round, run_round
from .backend import runner
from .kinds import JobKind
from .rows import JobAlreadyRunning


def retrain_job_active(project: Project) -> bool:
    return db.session.scalar(select(Job.id).where(
        Job.project_id == project.id, Job.kind == JobKind.RETRAIN,
        Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])).limit(1)) is not None


def submit_retrain(app: Flask, project: Project) -> Job:
    """Queue a round on the server's worker (raises JobAlreadyRunning if one is active)."""
    return runner(app).submit(JobKind.RETRAIN, project.id, run_round)


def maybe_submit_retrain(app: Flask, project: Project) -> Job | None:
    """Queue a round if N labels arrived since the last one, none is running, and the
    least time between rounds has passed (see ``round_cadence``)."""
    cache = app_cache(app)
    # Keyed by T too, so a lead shortening it is obeyed at once, not after the old wait.
    key = (project.id, project_min_round_interval_s(project))
    if time.monotonic() < (cache.get(PACING, key) or 0.0):
        return None  # known from an earlier check: saves three queries on every label
    if labels_until_next_round(project) > 0:
        return None
    if (wait := round_wait_s(project)) > 0:
        cache.put(PACING, key, time.monotonic() + wait)
        return None  # the next label or scheduler pass after the wait starts it
    if retrain_job_active(project):
        return None
    if current_vectors(project) is None:
        return None  # nothing to train on until the images are embedded
    try:
        return submit_retrain(app, project)
    except JobAlreadyRunning:
        return None
