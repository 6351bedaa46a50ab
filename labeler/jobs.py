"""Background jobs: a Job row per run, progress in the database, a backend that runs them.

The web server hands jobs to its backend, ``runner(app)``: in-process worker threads
(``JobRunner``, the default) or, with ``QUEUE_URL`` set, RQ on Redis
(``labeler.jobqueue``), run by ``labeler worker`` processes. The CLI runs the same job
functions in the foreground (``run_inline``). Either way the Job row
shows status and progress, and the database refuses a second queued-or-running job of
the same kind for the same project (a partial unique index), even across processes.

A job whose process died (kill -9, power cut) is recognised by its owner ("host:pid") no
longer running, or by a heartbeat older than ``STALE_AFTER``, and is marked failed so the
work can be started again.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .errors import LabelerError
from .extensions import db
from .models import Job, JobStatus, ModelRound, Project, utcnow

log = logging.getLogger(__name__)

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


def _owner() -> str:
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
        # and one whose worker died is retried or failed by the queue (labeler.jobqueue).
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
    from .training import RETRAIN_JOB  # lazy: training loads the classifier heads

    if job.kind == RETRAIN_JOB and job.project_id is not None:
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
              owner=owner or _owner(), heartbeat_at=utcnow(),
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


# Called as func(progress=Progress, project_id=int | None, **kwargs) -> summary sentence.
JobFunction = Callable[..., str]


def _job_title(job: Job) -> str:
    """How log lines name a job: ``job #7 (retrain, project 'demo')``."""
    project = db.session.get(Project, job.project_id) if job.project_id is not None else None
    where = f", project {project.name!r}" if project is not None else ""
    return f"job #{job.id} ({job.kind}{where})"


def _execute(job_id: int, func: JobFunction, kwargs: dict[str, Any],
             on_update: Callable[[float, str], None] | None = None,
             owner: str | None = None) -> Job:
    job = db.session.get(Job, job_id)
    assert job is not None
    job.status, job.started_at, job.heartbeat_at = JobStatus.RUNNING, utcnow(), utcnow()
    job.owner = owner or _owner()
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
    return _execute(job.id, func, kwargs, on_update)


class JobRunner:
    """Background worker threads of one server process: one thread per job kind.

    Kinds run independently, so a day-long embedding never delays a retrain round; jobs
    of one kind run one after another in submission order.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._queues: dict[str, queue.Queue[tuple[int, JobFunction, dict[str, Any]]]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, project_id: int | None, func: JobFunction,
               **kwargs: Any) -> Job:
        """Queue a job (raises JobAlreadyRunning if one of its kind is active)."""
        job = create_job(kind, project_id)
        with self._lock:
            lane = self._queues.setdefault(kind, queue.Queue())
            thread = self._threads.get(kind)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=self._work, args=(lane,), daemon=True,
                                          name=f"labeler-jobs-{kind}")
                self._threads[kind] = thread
                thread.start()
        lane.put((job.id, func, kwargs))
        return job

    def _work(self, lane: queue.Queue[tuple[int, JobFunction, dict[str, Any]]]) -> None:
        while True:
            job_id, func, kwargs = lane.get()
            try:
                with self.app.app_context():
                    _execute(job_id, func, kwargs)
                    db.session.remove()
            except Exception:  # noqa: BLE001 - the worker must outlive any one job
                log.exception("job runner error on job %s", job_id)
            finally:
                lane.task_done()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until every queued job has finished (tests, graceful shutdown)."""
        deadline = time.monotonic() + timeout
        while any(lane.unfinished_tasks for lane in list(self._queues.values())):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


class JobBackend(Protocol):
    """What runs submitted jobs: ``JobRunner`` here, or the RQ backend in labeler.jobqueue."""

    def submit(self, kind: str, project_id: int | None, func: JobFunction,
               **kwargs: Any) -> Job:
        """Create the Job row and queue the work (JobAlreadyRunning if one is active)."""
        ...


def init_app(app: Flask) -> None:
    """Give the app its job backend, chosen by ``QUEUE_URL`` (empty: in-process threads)."""
    if app.config.get("QUEUE_URL"):
        from .jobqueue.backend import RqBackend  # lazy: redis only where it is configured

        app.extensions["labeler.jobs"] = RqBackend(app.config["QUEUE_URL"])
    else:
        app.extensions["labeler.jobs"] = JobRunner(app)


def runner(app: Flask) -> JobBackend:
    """The app's job backend."""
    return app.extensions["labeler.jobs"]
