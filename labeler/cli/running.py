"""Running labeler: ``serve``, ``worker`` and ``demo`` (``db`` is Flask-Migrate's)."""

from __future__ import annotations

import secrets
from pathlib import Path

import click
from flask import current_app

from .base import LabelerAppGroup, LabelerCommand, with_database

commands = LabelerAppGroup("running")  # a holder: its commands are registered at the top


@commands.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; 0.0.0.0 for every interface.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=None, type=int,
              help="Worker processes (default: 2 on a machine with 2 cores or more).")
@click.option("--threads", default=4, show_default=True, type=int,
              help="Request threads in each worker process.")
def serve(host: str, port: int, workers: int | None, threads: int) -> None:
    """Serve the web app with a production WSGI server (gunicorn: processes × threads)."""
    from ..server import serve as run_server

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    run_server(app, host, port, workers, threads)


@commands.command("worker")
@click.option("--burst", is_flag=True, help="Exit once the queues are empty.")
@click.option("--queues", default=None, metavar="Q1,Q2",
              help="Queues to take jobs from, in priority order (default: "
                   "labeler-retrain,labeler-import,labeler-export,labeler-map,labeler-embed).")
@with_database
def worker_command(burst: bool, queues: str | None) -> None:
    """Run jobs from the Redis queue at LABELER_QUEUE_URL (start any number, anywhere)."""
    from ..jobs import runner
    from ..jobs.rq.backend import DEFAULT_QUEUES
    from ..jobs.rq.worker import LabelerWorker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config["QUEUE_URL"]:
        raise click.ClickException(
            "LABELER_QUEUE_URL is not set, so the server runs jobs itself and there is "
            "nothing for a worker to do. Set it to a Redis URL (redis://host:6379/0) here "
            "and for the server.")
    backend = runner(app)
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else DEFAULT_QUEUES
    worker = LabelerWorker([backend.queue(name) for name in names],  # type: ignore[attr-defined]
                           connection=backend.connection)  # type: ignore[attr-defined]
    where = app.config["QUEUE_URL"].rpartition("@")[2]  # never print a password
    click.echo(f"labeler worker {worker.name} on {', '.join(names)} at {where}")
    worker.work(burst=burst, logging_level=app.config["LOG_LEVEL"])


DEMO_PROJECT = "demo"
DEMO_USER = "demo"


@click.command("demo", cls=LabelerCommand)
@click.option("--home", type=click.Path(path_type=Path), default=Path("labeler-demo"),
              show_default=True, help="Data directory of the demo (kept apart from real data).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Prepare the demo project, then exit.")
def demo(home: Path, host: str, port: int, no_serve: bool) -> None:
    """Create a demo project and a demo lead, print the login, and serve the app."""
    from .. import create_app
    from ..database import upgrade_database
    from ..demo import prepare_demo

    app = create_app({"HOME": home})
    upgrade_database(app)
    password = secrets.token_urlsafe(9)
    with app.app_context():
        summary = prepare_demo(DEMO_PROJECT, DEMO_USER, password)
    click.echo(summary)
    click.echo(f"Log in as {DEMO_USER!r} with password {password!r}")
    if not no_serve:
        from ..server import serve as run_server

        run_server(app, host, port)
