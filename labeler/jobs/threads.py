"""The in-process job backend: worker threads of the server process, one per job kind.

The default backend (``QUEUE_URL`` empty). Jobs die with their process; the next start
marks them interrupted (``rows.fail_stale_jobs``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from flask import Flask

from ..extensions import db
from ..models import Job
from .execute import JobFunction, execute_job
from .rows import create_job

log = logging.getLogger(__name__)


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
                    execute_job(job_id, func, kwargs)
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
