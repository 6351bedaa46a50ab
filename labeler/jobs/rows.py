"""Job rows: one per run, with status, progress, owner and heartbeat in the database.

The Job row is the only record of a job, whoever runs it (``labeler.jobs`` explains the
backends). The database refuses a second queued-or-running job of the same kind for the
same project (a partial unique index), even across processes.

A job whose process died (kill -9, power cut) is recognised by its owner ("host:pid") no
longer running, or by a heartbeat older than ``STALE_AFTER``, and is marked failed so the
work can be started again.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..errors import LabelerError
from ..extensions import db
from ..models import Job, JobStatus, ModelRound, utcnow
from .kinds import JobKind

STALE_AFTER = timedelta(minutes=10)
# Owner of a Job row while a queue (RQ) holds it; see is_stale.
QUEUE_OWNER_PREFIX = "queue:"
PROGRESS_INTERVAL_S = 0.5  # write progress at most this often


class JobAlreadyRunning(LabelerError):
    """A job of this kind is already queued or running for the project."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"A {job.kind} job (#{job.id}) is already {job.status} for this "
                         "project; wait for it to finish.")
        self.job = job


def current_owner() -> str:
    """How a Job row names this process: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_is_dead(host: str, pid: str) -> bool:
    """Whether process ``pid`` on ``host`` is known to be gone.

    Only this machine's processes can be checked; for another host the answer is False
    and only a heartbeat can tell.
    """
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, under another user
    return _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but not been reaped (still answers ``kill 0``).

    A killed server's workers are re-parented; where nothing reaps them (a container
    whose PID 1 is not an init) they stay zombies, and a zombie runs no job.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # "pid (comm) state ...": comm may hold spaces and parentheses.
            return stat.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False  # no /proc (macOS) or it vanished: kill 0 answered already


def _owner_is_dead(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    return process_is_dead(host, pid)


def is_stale(job: Job) -> bool:
    """Whether an active job's process is gone (or silent for too long)."""
    if not job.is_active:
        return False
    if job.owner.startswith(QUEUE_OWNER_PREFIX):
        # The queue decides: a job waits there for a free worker for as long as it takes,
        # and one whose worker died is retried or failed by the queue (labeler.jobs.rq).
        return False
    if job.owner and _owner_is_dead(job.owner):
        return True
    heartbeat = job.heartbeat_at or job.created_at
    if heartbeat.tzinfo is None:  # SQLite returns naive datetimes
        heartbeat = heartbeat.replace(tzinfo=utcnow().tzinfo)
    return utcnow() - heartbeat > STALE_AFTER


def fail_stale_jobs(project_id: int | None = None) -> int:
    """Mark active jobs whose process died as failed; return how many."""
    query = select(Job).where(Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
    if project_id is not None:
        query = query.where(Job.project_id == project_id)
    count = 0
    for job in db.session.scalars(query).all():  # all(): updates follow in the loop
        if is_stale(job):
            mark_interrupted(job, "Interrupted: the process running it stopped. Start it again.")
            count += 1
    db.session.commit()
    return count


def mark_interrupted(job: Job, message: str) -> None:
    """Mark a job that can no longer finish failed, with its round (caller commits)."""
    job.status = JobStatus.FAILED
    job.message = message
    job.finished_at = utcnow()
    if job.kind == JobKind.RETRAIN and job.project_id is not None:
        _fail_interrupted_rounds(job.project_id)


def _fail_interrupted_rounds(project_id: int) -> None:
    """Mark the running round of a dead retrain job failed (it cannot finish any more).

    One retrain job per project at a time, so a round still "running" once that job is
    stale was its round; left alone it would show as running forever.
    """
    db.session.execute(
        update(ModelRound)
        .where(ModelRound.project_id == project_id, ModelRound.status == JobStatus.RUNNING)
        .values(status=JobStatus.FAILED,
                message="Interrupted: the process running this round stopped."))


def create_job(kind: str, project_id: int | None, status: str = JobStatus.QUEUED,
               owner: str | None = None) -> Job:
    """Insert a Job row, or raise JobAlreadyRunning if one of its kind is active.

    Args:
        owner: who will run it; default this process ("host:pid").
    """
    fail_stale_jobs(project_id)
    job = Job(kind=kind, project_id=project_id, status=status, progress=0.0, message="",
              owner=owner or current_owner(), heartbeat_at=utcnow(),
              started_at=utcnow() if status == JobStatus.RUNNING else None)
    db.session.add(job)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        active = db.session.scalar(select(Job).where(
            Job.project_id == project_id, Job.kind == kind,
            Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])))
        if active is None:  # it finished in between: try once more
            return create_job(kind, project_id, status, owner)
        raise JobAlreadyRunning(active) from None
    return job


class Progress:
    """Handed to a job function: report progress and a message, throttled."""

    def __init__(self, job_id: int, on_update: Callable[[float, str], None] | None = None):
        self.job_id = job_id
        self._last_write = 0.0
        self._on_update = on_update

    def __call__(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        if self._on_update:
            self._on_update(fraction, message)
        now = time.monotonic()
        if not force and now - self._last_write < PROGRESS_INTERVAL_S:
            return
        self._last_write = now
        job = db.session.get(Job, self.job_id)
        if job is None:
            return
        job.progress = max(0.0, min(1.0, fraction))
        if message:
            job.message = message
        job.heartbeat_at = utcnow()
        db.session.commit()
