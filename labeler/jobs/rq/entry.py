"""What an RQ job runs on a worker: a Job row's task, and the end of one that failed.

RQ calls these by import path. Each builds (once per process) the app from the worker's
own configuration (``LABELER_*``), or uses the app of the ``labeler worker`` command, and
works on the Job row, which stays the record of status and progress.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from flask import Flask, current_app, has_app_context
from rq.exceptions import AbandonedJobError
from rq.job import Job as RqJob

from ...extensions import db
from ...models import Job, JobChunk, JobStatus, utcnow
from ..execute import execute_job
from ..rows import mark_interrupted
from ..tasks import TASKS

log = logging.getLogger(__name__)

_app: Flask | None = None


def worker_app() -> Flask:
    """The app this worker runs jobs in: the CLI's, else one built from the environment."""
    global _app
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    if _app is None:
        from ... import create_app

        _app = create_app()
    return _app


@contextmanager
def job_context() -> Iterator[None]:
    """An app context with its own database session, removed afterwards."""
    with worker_app().app_context():
        try:
            yield
        finally:
            db.session.remove()


def run_job(job_id: int, task_name: str, kwargs: dict[str, Any]) -> str:
    """RQ job: run the Job row's task, as the in-process runner would.

    The row keeps its queue owner while it runs: a worker that dies is the queue's to
    notice (retry, then ``on_failure``), not ``fail_stale_jobs``'s.
    """
    with job_context():
        job = db.session.get(Job, job_id)
        if job is None or not job.is_active:
            return f"skipped: job {job_id} is no longer active"
        task = TASKS.get(task_name)
        if task is None:  # queued by another version of labeler
            mark_interrupted(job, f"This worker's labeler has no task {task_name!r}; run "
                             "the same labeler version on the server and the workers, then "
                             "start the job again.")
            db.session.commit()
            return f"failed: unknown task {task_name!r}"
        return execute_job(job_id, task.function, kwargs, owner=job.owner).status


def on_failure(rq_job: RqJob, connection: Any, exc_type: type[BaseException],
               exc_value: BaseException, traceback: TracebackType | None) -> None:
    """RQ failure callback: fail the Job row once RQ will not run the job again.

    RQ calls it before deciding on a retry (also for a job abandoned by a dead worker), so
    a job with retries left is left alone: its next run continues the work.
    """
    if rq_job.retries_left:
        log.warning("RQ job %s failed (%s); %s retries left", rq_job.id, exc_type.__name__,
                    rq_job.retries_left)
        return
    if isinstance(exc_value, AbandonedJobError) or exc_type is AbandonedJobError:
        reason = ("Interrupted: the worker running it stopped, on every attempt. "
                  "Start it again.")
    else:
        reason = f"Failed on the worker: {exc_type.__name__}: {exc_value}"
    job_id = rq_job.meta.get("labeler_job_id")
    with job_context():
        job = db.session.get(Job, job_id) if job_id is not None else None
        if job is None or not job.is_active:
            return
        mark_interrupted(job, reason)
        chunk_id = rq_job.meta.get("labeler_chunk_id")
        if chunk_id is not None and (chunk := db.session.get(JobChunk, chunk_id)) is not None:
            chunk.status, chunk.finished_at = JobStatus.FAILED, utcnow()
        db.session.commit()
