"""``LabelerWorker``: the RQ worker behind ``labeler worker``.

A ``SimpleWorker`` (jobs run in the worker process, no fork per job): the backbone and
TensorFlow load once per worker, not once per job, and TensorFlow's thread pools do not
survive a fork anyway.

RQ notices a job whose worker died when the job's entry in the StartedJobRegistry
expires, and then retries it (``Retry``) or fails it (our ``on_failure``). A SimpleWorker
writes that entry once, with the job's whole timeout, so a killed worker's chunk would
wait a day. Here a heartbeat thread keeps the entry ``EXECUTION_TTL_S`` ahead while the job
runs, so a dead worker's job is noticed within that time on any machine; and a worker on
the same host as a dead one notices at once (its pid is gone) and expires the entry
itself, leaving the retry to RQ's own cleanup.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job as RqJob

from ..rows import process_is_dead

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 10.0
EXECUTION_TTL_S = 60  # a running job's registry entry expires this long after a heartbeat
WORKER_TTL_S = 60  # also bounds how long an idle worker blocks before its maintenance
MAINTENANCE_INTERVAL_S = 30  # how often a worker looks for abandoned jobs
_REAPER_LOCK = "labeler:reaper-lock"


class LabelerWorker(SimpleWorker):
    """An RQ SimpleWorker that heartbeats while a job runs and reaps dead workers' jobs."""

    def __init__(self, queues: Sequence[Queue], connection: Redis) -> None:
        super().__init__(list(queues), connection=connection, worker_ttl=WORKER_TTL_S,
                         maintenance_interval=MAINTENANCE_INTERVAL_S)

    def get_heartbeat_ttl(self, job: RqJob, working_time: float = 0.0) -> int:
        """How long the job's registry entry lives without a heartbeat (see module doc)."""
        return EXECUTION_TTL_S

    def execute_job(self, job: RqJob, queue: Queue) -> None:
        """Run ``job`` here, with a heartbeat thread keeping it visibly alive."""
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(stop,), daemon=True,
                                name="labeler-worker-heartbeat")
        beat.start()
        try:
            super().execute_job(job, queue)
        finally:
            stop.set()
            beat.join()

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_INTERVAL_S):
            try:
                with self.connection.pipeline() as pipeline:
                    self.heartbeat(WORKER_TTL_S + 60, pipeline=pipeline)
                    for execution in list(self.executions.values()):
                        execution.heartbeat(execution.job.started_job_registry,
                                            EXECUTION_TTL_S, pipeline=pipeline)
                    pipeline.execute()
            except RedisError:  # the next beat retries; the job itself carries on
                log.warning("worker heartbeat failed", exc_info=True)

    def run_maintenance_tasks(self) -> None:
        """RQ's maintenance, preceded by expiring the jobs of dead workers on this host."""
        reap_dead_workers_jobs(self.connection, self.queues)
        super().run_maintenance_tasks()


def reap_dead_workers_jobs(connection: Redis, queues: Sequence[Queue]) -> int:
    """Hand the jobs of dead workers to RQ's retry; return how many.

    A worker is dead when its Redis key expired, or when it ran on this host and its pid is
    gone. Its execution's registry entry is expired, then the registry's own cleanup
    retries the job or fails it. A lock keeps two workers from retrying one job twice.
    """
    if not connection.set(_REAPER_LOCK, os.getpid(), nx=True, ex=60):
        return 0  # another worker is reaping right now
    reaped = 0
    try:
        for queue in queues:
            registry = queue.started_job_registry
            dead = []
            for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
                try:
                    execution = Execution.fetch(execution_id, job_id, connection)
                except ValueError:
                    continue  # its hash expired: the registry entry has expired too
                if _worker_is_dead(connection, execution.worker_name):
                    dead.append(execution.composite_key)
            if dead:
                log.warning("retrying %d jobs of dead workers on %s", len(dead), queue.name)
                connection.zadd(registry.key, dict.fromkeys(dead, 1), xx=True)
            registry.cleanup()  # RQ's own: retry (Retry) or fail (on_failure) each
            reaped += len(dead)
    finally:
        connection.delete(_REAPER_LOCK)
    return reaped


def _worker_is_dead(connection: Redis, worker_name: str) -> bool:
    if not worker_name:
        return False
    fields = connection.hmget(SimpleWorker.redis_worker_namespace_prefix + worker_name,
                              "hostname", "pid")
    hostname, pid = (value.decode() if value else "" for value in fields)
    if not hostname and not pid:
        return True  # its key expired: no heartbeat for WORKER_TTL_S + 60 s
    return process_is_dead(hostname, pid)  # another machine: its heartbeat will tell
