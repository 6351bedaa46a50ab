"""``labeler serve``: the app under gunicorn, in worker processes that each run threads.

Why processes: one Python process runs Python code on one core at a time (the GIL). With
a single process, eight annotators' requests queued behind each other and a retrain round
in the same process slowed every one of them; two worker processes doubled the labels per
second on two cores (bench/load.py). Threads inside each worker keep slow clients and
uploads from blocking the others.

The master process prepares the database (migrations, interrupted jobs, abandoned upload
spools) and then only supervises: it starts no threads and holds no database connection,
so forking workers is safe. Each worker, once forked, starts its own scheduler; the
scheduler's passes and the jobs they queue may run in any worker, and the database's
one-active-job-per-kind index keeps two workers from starting the same job. Job threads
die with their worker, and the next start marks such jobs interrupted (labeler.jobs).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

log = logging.getLogger(__name__)

DEFAULT_THREADS = 4
REQUEST_TIMEOUT_S = 300  # a worker silent this long is restarted (big uploads, exports)
# Client, time, request line, status, bytes, milliseconds: short enough to read live.
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(r)s" %(s)s %(B)s %(M)sms'


def default_workers() -> int:
    """Two workers where there are two cores or more: one per core, at most two by default.

    More workers mean more memory (each may load TensorFlow for an embedding job) for
    little gain once the database write lock is the bottleneck; raise it with --workers.
    """
    return max(1, min(2, os.cpu_count() or 1))


def prepare(app: Flask) -> None:
    """Once, in the master, before any worker starts: migrate and tidy up after a crash."""
    from .database import upgrade_database
    from .extensions import db
    from .importer import remove_abandoned_upload_spools
    from .jobs import fail_stale_jobs
    from .rounds import retire_pickled_heads
    from .storage import data_root
    from .users import has_users

    upgrade_database(app)
    with app.app_context():
        if not has_users():
            click.echo("No users yet. Create the first project lead in another terminal:\n"
                       "  labeler user create NAME --role lead")
        fail_stale_jobs()  # jobs a crashed server was running are shown as interrupted
        remove_abandoned_upload_spools(data_root())
        retire_pickled_heads(data_root())  # never loaded; their rounds retrain (rounds.py)
        db.session.remove()
        db.engine.dispose()  # forked workers must not share the master's pooled connections


def start_worker_services(app: Flask) -> None:
    """In each worker process, after the fork: BLAS threads and the scheduler."""
    from threadpoolctl import threadpool_limits

    from .jobs.scheduler import start_scheduler

    # One BLAS thread per worker. Requests do small matrix products (a head's
    # predict_proba, nearest labelled neighbours), and OpenBLAS's pool threads spin after
    # each one: that more than doubled the CPU a label costs and starved other requests.
    # Rounds run in these processes too and get slower, but annotators come first;
    # `labeler worker` processes (LABELER_QUEUE_URL) keep every core for jobs.
    threadpool_limits(limits=1, user_api="blas")
    start_scheduler(app, run_now=True)


class _Gunicorn(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn configured from our options instead of its command line."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def serve(app: Flask, host: str, port: int, workers: int | None = None,
          threads: int = DEFAULT_THREADS) -> None:
    """Serve ``app`` on ``host:port`` until interrupted (Ctrl+C or SIGTERM: graceful)."""
    workers = workers or default_workers()
    prepare(app)
    shown_host = "localhost" if host in {"127.0.0.1", "0.0.0.0", "::"} else host
    click.echo(f"labeler is serving on http://{shown_host}:{port}/  (Ctrl+C stops it; "
               f"{workers} worker processes × {threads} threads)")

    def post_worker_init(worker: Any) -> None:
        start_worker_services(app)

    _Gunicorn(app, {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        **gunicorn_log_options(app),
        "post_worker_init": post_worker_init,
    }).run()


def gunicorn_log_options(app: Flask) -> dict[str, Any]:
    """gunicorn's fixed settings, with its logs as the app's settings ask.

    The error log (start-up, worker restarts) always goes to the terminal; the access log,
    one line per request, unless ``ACCESS_LOG`` is off.
    """
    return {
        "worker_class": "gthread",
        "timeout": REQUEST_TIMEOUT_S,
        "graceful_timeout": 30,
        "accesslog": "-" if app.config.get("ACCESS_LOG", True) else None,
        "access_log_format": ACCESS_LOG_FORMAT,
        "errorlog": "-",
        "loglevel": app.config.get("LOG_LEVEL", "INFO").lower(),
        "proc_name": "labeler",
        # No gunicornc control socket: it lives at one path in $HOME, which two servers on
        # one machine would fight over, and nothing of ours uses it.
        "control_socket_disable": True,
    }
