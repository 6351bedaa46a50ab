"""The RQ backend: ``submit`` creates the Job row and puts the work on a Redis queue.

One queue per job kind, so a worker can be dedicated to a kind (``labeler worker --queues
labeler-embed``) and a backlog of embedding chunks never delays a retrain round: workers
take the queues in ``DEFAULT_QUEUES`` order. Jobs are enqueued by import path, never by a
pickled function, so a worker runs the code it has installed.
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Callback, Queue, Retry

from ..errors import LabelerError
from ..extensions import db
from ..jobs import QUEUE_OWNER_PREFIX, JobFunction, create_job, mark_interrupted
from ..models import Job

# Rounds first, then imports and model exports, then embedding chunks (the long tail).
DEFAULT_QUEUES = ("labeler-retrain", "labeler-import", "labeler-export", "labeler-embed")
# How many times a job whose worker died is run again before its Job row is failed.
RETRIES = 3
# RQ's own limit on one run; liveness is the worker heartbeat's business (worker.py), so
# this only stops a job that hangs, and must exceed the longest honest round or chunk.
JOB_TIMEOUT_S = 24 * 3600
# Job functions submitted with these paths are split into chunks (chunks.py); the value
# says whether a round follows the embedding, as embed_then_schedule_round does in-process.
CHUNKED = {"labeler.scheduler.embed_then_schedule_round": True,
           "labeler.project_vectors.embed_project": False}


def queue_name(kind: str) -> str:
    """The Redis queue of a job kind."""
    return f"labeler-{kind}"


def function_path(func: JobFunction) -> str:
    """``module.name`` of a job function, which a worker imports to run it."""
    path = f"{func.__module__}.{func.__qualname__}"
    if "<" in path:  # a lambda or a nested function cannot be imported by a worker
        raise ValueError(f"Job function {path} must be defined at module level.")
    return path


class RqBackend:
    """``submit`` as ``JobRunner`` has it, with the work done by ``labeler worker`` processes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection = Redis.from_url(url)

    def queue(self, name: str) -> Queue:
        """The RQ queue called ``name`` on this backend's Redis."""
        return Queue(name, connection=self.connection)

    def submit(self, kind: str, project_id: int | None, func: JobFunction,
               **kwargs: Any) -> Job:
        """Create the Job row and enqueue its work (JobAlreadyRunning if one is active)."""
        path = function_path(func)
        name = queue_name(kind)
        job = create_job(kind, project_id, owner=QUEUE_OWNER_PREFIX + name)
        if path in CHUNKED:
            target, args = "labeler.jobqueue.chunks.plan_embedding", (job.id, CHUNKED[path])
        else:
            target, args = "labeler.jobqueue.entry.run_job", (job.id, path, kwargs)
        try:
            self.enqueue(name, target, args, {"labeler_job_id": job.id})
        except RedisError as exc:
            mark_interrupted(job, f"Could not reach the job queue: {exc}")
            db.session.commit()
            raise LabelerError(f"The job queue ({self.url}) cannot be reached: {exc}. Check "
                               "that Redis is running and LABELER_QUEUE_URL is right.") from exc
        return job

    def enqueue(self, name: str, target: str, args: tuple[Any, ...],
                meta: dict[str, int]) -> None:
        """Put one RQ job on queue ``name``: retried if its worker dies, failed for good after.

        ``meta`` names the Job row (and chunk) that ``entry.on_failure`` fails.
        """
        self.queue(name).enqueue(
            target, *args, job_timeout=JOB_TIMEOUT_S, retry=Retry(max=RETRIES),
            on_failure=Callback("labeler.jobqueue.entry.on_failure"),
            meta=meta, result_ttl=3600)
