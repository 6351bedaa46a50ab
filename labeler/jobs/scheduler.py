"""What the server does by itself: embed new images, then run the rounds that are due.

Runs at server start and every 30 s on a daemon thread, so images imported with the CLI
while the server runs are embedded and ranked without anyone asking.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask
from sqlalchemy import select

from ..extensions import db
from ..finetuning import pending_backbone, resume_switch
from ..models import Job, Project
from ..project_vectors import embedding_counts
from ..rounds import head_missing
from .backend import runner
from .kinds import JobKind
from .pipelines import submit_embedding
from .rows import JobAlreadyRunning
from .triggers import maybe_submit_retrain, submit_retrain

log = logging.getLogger(__name__)


def submit_due_work(app: Flask) -> list[Job]:
    """Queue an embed job for each project with images lacking vectors, else a due round.

    A round is due after N new labels (``maybe_submit_retrain``), or when the newest round
    trained a head that is gone (an old pickle removed at start-up, a lost file): heads are
    derived from the labels, so the round is run again.
    """
    jobs = []
    for project in db.session.scalars(select(Project).order_by(Project.id)):
        embedded, total = embedding_counts(project)
        if embedded < total and (job := submit_embedding(app, project)) is not None:
            jobs.append(job)
        elif embedded == total and embedded and (
                job := maybe_submit_retrain(app, project)) is not None:
            jobs.append(job)  # e.g. labels given while no server was running
        elif embedded == total and embedded and head_missing(project):
            try:
                jobs.append(submit_retrain(app, project))
            except JobAlreadyRunning:
                pass
        if embedded == total and pending_backbone(project):
            try:  # a fine-tune stopped while re-embedding: finish moving to its backbone
                jobs.append(runner(app).submit(JobKind.FINETUNE, project.id, resume_switch))
            except JobAlreadyRunning:
                pass  # the fine-tune itself, or a resume, is still at it
    return jobs


def start_scheduler(app: Flask, interval_s: float = 30.0, *,
                    run_now: bool = False) -> threading.Thread:
    """Start the daemon thread that calls ``submit_due_work`` every ``interval_s``.

    ``run_now``: make the first pass at once (a server starting up), not after a wait.
    """

    def loop() -> None:
        stop = threading.Event()
        if not run_now:
            stop.wait(interval_s)
        while True:
            try:
                with app.app_context():
                    submit_due_work(app)
                    db.session.remove()
            except Exception:  # noqa: BLE001 - keep scheduling whatever one pass hit
                log.exception("scheduler pass failed")
            stop.wait(interval_s)

    thread = threading.Thread(target=loop, name="labeler-scheduler", daemon=True)
    thread.start()
    return thread
