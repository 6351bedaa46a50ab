"""What starts a retrain round: a lead's button, N new labels, and the pause after long ones.

The round itself is ``labeler.training.run_round``; this module decides when to queue it
(on the app's job backend), so that training knows nothing of jobs.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import select

from ..cache import PACING, app_cache
from ..extensions import db
from ..models import Job, JobStatus, ModelRound, Project, utcnow
from ..project_vectors import current_vectors
from ..training import labels_until_next_round, run_round
from .backend import runner
from .kinds import JobKind
from .rows import JobAlreadyRunning

ROUND_PACING_MIN_S = 5.0  # rounds quicker than this are never paced (see pacing_wait_s)


def retrain_job_active(project: Project) -> bool:
    return db.session.scalar(select(Job.id).where(
        Job.project_id == project.id, Job.kind == JobKind.RETRAIN,
        Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])).limit(1)) is not None


def submit_retrain(app: Flask, project: Project) -> Job:
    """Queue a round on the server's worker (raises JobAlreadyRunning if one is active)."""
    return runner(app).submit(JobKind.RETRAIN, project.id, run_round)


def pacing_wait_s(project: Project, now: datetime | None = None) -> float:
    """Seconds before the next automatic round may start (0: it may start now).

    With many annotators, "every N labels" comes round faster than a round on a big pool
    takes, and back-to-back rounds would keep a core busy for good, taken from the people
    labelling. So after a round that took longer than ROUND_PACING_MIN_S, automatic rounds
    pause for as long as it took: at most half the time goes to training. Rounds a lead
    asks for are never paced.
    """
    last = db.session.execute(
        select(ModelRound.created_at, ModelRound.duration_s)
        .where(ModelRound.project_id == project.id, ModelRound.duration_s.is_not(None))
        .order_by(ModelRound.number.desc()).limit(1)).first()
    if last is None or last.duration_s < ROUND_PACING_MIN_S:
        return 0.0
    started = last.created_at
    if started.tzinfo is None:  # SQLite returns naive datetimes; we store UTC
        started = started.replace(tzinfo=UTC)
    resume = started + timedelta(seconds=2 * last.duration_s)
    return max(0.0, (resume - (now or utcnow())).total_seconds())


def maybe_submit_retrain(app: Flask, project: Project) -> Job | None:
    """Queue a round if N labels arrived since the last one, none is running, and the
    pause after a long round is over (see ``pacing_wait_s``)."""
    cache = app_cache(app)
    if time.monotonic() < (cache.get(PACING, (project.id,)) or 0.0):
        return None  # known from an earlier check: saves three queries on every label
    if labels_until_next_round(project) > 0:
        return None
    if (wait := pacing_wait_s(project)) > 0:
        cache.put(PACING, (project.id,), time.monotonic() + wait)
        return None  # the next label or scheduler pass after the pause starts it
    if retrain_job_active(project):
        return None
    if current_vectors(project) is None:
        return None  # nothing to train on until the images are embedded
    try:
        return submit_retrain(app, project)
    except JobAlreadyRunning:
        return None
