"""Running a job's function under its Job row: status, timing, the summary or the error.

Every backend ends here: the in-process threads (``threads``), a ``labeler worker``
(``rq.entry``), and the CLI, which runs jobs in the foreground (``run_inline``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..errors import LabelerError
from ..extensions import db
from ..models import Job, JobStatus, Project, utcnow
from .rows import Progress, create_job, current_owner

# One line when a job starts and one when it ends, under the package's name: what an
# operator filters the server's log by (``labeler.jobs``), wherever the job ran.
log = logging.getLogger("labeler.jobs")


# Called as func(progress=Progress, project_id=int | None, **kwargs) -> summary sentence.
JobFunction = Callable[..., str]


def _job_title(job: Job) -> str:
    """How log lines name a job: ``job #7 (retrain, project 'demo')``."""
    project = db.session.get(Project, job.project_id) if job.project_id is not None else None
    where = f", project {project.name!r}" if project is not None else ""
    return f"job #{job.id} ({job.kind}{where})"


def execute_job(job_id: int, func: JobFunction, kwargs: dict[str, Any],
                on_update: Callable[[float, str], None] | None = None,
                owner: str | None = None) -> Job:
    """Run ``func`` as the Job row ``job_id``: running, then succeeded with its summary or
    failed with the error's sentence. Returns the finished row."""
    job = db.session.get(Job, job_id)
    assert job is not None
    job.status, job.started_at, job.heartbeat_at = JobStatus.RUNNING, utcnow(), utcnow()
    job.owner = owner or current_owner()
    db.session.commit()
    # One line when a job starts and one when it ends: otherwise the server's terminal
    # says nothing between start-up and Ctrl+C, however much work it does.
    title = _job_title(job)
    log.info("Started %s", title)
    started = time.monotonic()
    try:
        summary = func(progress=Progress(job_id, on_update), project_id=job.project_id,
                       **kwargs)
    except Exception as exc:
        db.session.rollback()
        if not isinstance(exc, LabelerError):
            log.exception("job %s (%s) failed", job_id, job.kind)
        job = db.session.get(Job, job_id)
        job.status = JobStatus.FAILED
        job.message = str(exc) if isinstance(exc, LabelerError) else (
            f"Failed: {type(exc).__name__}: {exc}")
    else:
        job = db.session.get(Job, job_id)
        job.status, job.progress, job.message = JobStatus.SUCCEEDED, 1.0, summary or "Done."
    job.finished_at = utcnow()
    db.session.commit()
    log.log(logging.INFO if job.status == JobStatus.SUCCEEDED else logging.WARNING,
            "Finished %s: %s in %.1f s. %s", title, job.status, time.monotonic() - started,
            job.message)
    return job


def run_inline(kind: str, project_id: int | None, func: JobFunction,
               on_update: Callable[[float, str], None] | None = None, **kwargs: Any) -> Job:
    """Run a job in this thread (the CLI), with a Job row like any other."""
    job = create_job(kind, project_id, status=JobStatus.RUNNING)
    return execute_job(job.id, func, kwargs, on_update)
