"""Background jobs: a Job row per run, progress in the database, a backend that runs them.

The web server hands jobs to its backend, ``runner(app)``: in-process worker threads
(``threads.JobRunner``, the default) or, with ``QUEUE_URL`` set, RQ on Redis (``rq``),
run by ``labeler worker`` processes, which accept only the tasks declared in ``tasks``.
The CLI runs the same job functions in the foreground (``execute.run_inline``). Either
way the Job row (``rows``) shows status and progress.

``triggers`` decides when a round is due, ``pipelines`` chains import → embed → round,
``exports`` builds model files, ``scheduler`` is what the server does by itself. This
module only binds the backend to the app and re-exports what callers use.
"""

from __future__ import annotations

from flask import Flask

from .backend import JobBackend, runner
from .execute import JobFunction, execute_job, run_inline
from .kinds import JobKind
from .rows import JobAlreadyRunning, Progress, create_job, fail_stale_jobs
from .threads import JobRunner

__all__ = [
    "JobAlreadyRunning",
    "JobBackend",
    "JobFunction",
    "JobKind",
    "JobRunner",
    "Progress",
    "create_job",
    "execute_job",
    "fail_stale_jobs",
    "init_app",
    "run_inline",
    "runner",
]


def init_app(app: Flask) -> None:
    """Give the app its job backend, chosen by ``QUEUE_URL`` (empty: in-process threads)."""
    if app.config.get("QUEUE_URL"):
        from .rq.backend import RqBackend  # lazy: redis only where it is configured

        app.extensions["labeler.jobs"] = RqBackend(app.config["QUEUE_URL"])
    else:
        app.extensions["labeler.jobs"] = JobRunner(app)
