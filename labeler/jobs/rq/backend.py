"""The RQ backend: ``submit`` creates the Job row and puts the work on a Redis queue.

One queue per job kind, so a worker can be dedicated to a kind (``labeler worker --queues
labeler-embed``) and a backlog of embedding chunks never delays a retrain round: workers
take the queues in ``DEFAULT_QUEUES`` order. Jobs are enqueued by task name
(``labeler.jobs.tasks``), never by a pickled function or an import path, so a worker runs
only the tasks its installed labeler declares.
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Callback, Queue, Retry

from ...errors import LabelerError
from ...extensions import db
from ...models import Job
from ..execute import JobFunction
from ..rows import QUEUE_OWNER_PREFIX, create_job, mark_interrupted
from ..tasks import task_for

# Rounds first, then imports and model exports, then embedding chunks (the long tail).
DEFAULT_QUEUES = (
    "labeler-retrain", "labeler-import", "labeler-export", "labeler-map", "labeler-embed")
# How many times a job whose worker died is run again before its Job row is failed.
RETRIES = 3
# RQ's own limit on one run; liveness is the worker heartbeat's business (worker.py), so
# this only stops a job that hangs, and must exceed the longest honest round or chunk.
JOB_TIMEOUT_S = 24 * 3600


# RQ calls our entry points by import path (only these three, all in this package).
_RQ = "labeler.jobs.rq"


def queue_name(kind: str) -> str:
    """The Redis queue of a job kind."""
    return f"labeler-{kind}"


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
        """Create the Job row and enqueue its work (JobAlreadyRunning if one is active).

        Raises:
            ValueError: ``func`` is not a declared task of ``kind`` (``labeler.jobs.tasks``).
        """
        task = task_for(func, kind)
        name = queue_name(kind)
        job = create_job(kind, project_id, owner=QUEUE_OWNER_PREFIX + name)
        if task.chunked:
            target, args = f"{_RQ}.chunks.plan_embedding", (job.id, task.round_after)
        else:
            target, args = f"{_RQ}.entry.run_job", (job.id, task.name, kwargs)
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
            on_failure=Callback(f"{_RQ}.entry.on_failure"),
            meta=meta, result_ttl=3600)
