"""The model export as a background job: build the ``.keras`` file, then offer it.

Building the model loads TensorFlow and the backbone: about 7-9 s and 600 MiB the first
time in a process, under a second after that (``bench/model_export_time.py``). Inside a
web request that is a long wait with no feedback and a web worker grown by the size of
TensorFlow. As a job it runs where jobs run (the server's job thread, or a ``labeler
worker`` with ``LABELER_QUEUE_URL``), shows its status like any other job, and leaves a
file that is downloaded (and downloaded again) without building anything.

The files, and how their names say which round they hold: ``labeler.model_files``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from .. import export
from ..errors import LabelerError
from ..extensions import db
from ..model_files import MODEL_FILE, exports_dir, trained_round
from ..models import Job, Project
from .backend import runner
from .kinds import JobKind
from .rows import Progress


def latest_export_job(project: Project) -> Job | None:
    """The project's most recent model export job, whatever its status."""
    return db.session.scalar(select(Job).where(Job.project_id == project.id,
                                               Job.kind == JobKind.EXPORT)
                             .order_by(Job.id.desc()).limit(1))


def export_model_job(progress: Progress, project_id: int) -> str:
    """Job: write the project's trained model as a ``.keras`` file for download.

    Returns:
        The sentence the job's status shows.

    Raises:
        LabelerError: TensorFlow is not installed, or the project has no trained round.
    """
    project = db.session.get(Project, project_id)
    if project is None:
        raise LabelerError("The project was deleted before its model could be exported.")
    exporter: Callable[[Project, Path], object] | None = export.model_exporter()
    if exporter is None:
        raise LabelerError(export.MODEL_UNAVAILABLE)
    round_ = trained_round(project)
    if round_ is None:
        raise LabelerError("There is no trained model to export yet: label a few images of "
                           "at least two classes and let a round train, then export again.")
    progress(0.1, f"Building the model of round {round_.number} (the first export loads "
             "TensorFlow, which takes a while)…", force=True)
    folder = exports_dir(project.id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"round-{round_.number}.job-{progress.job_id}.keras"
    exporter(project, path)  # written under a temporary name, then moved into place
    for older in folder.iterdir():
        if MODEL_FILE.match(older.name) and older != path:
            older.unlink(missing_ok=True)
    size_mb = path.stat().st_size / 1e6
    return f"The model of round {round_.number} is ready to download ({size_mb:.1f} MB)."


def submit_model_export(app: Flask, project: Project) -> Job:
    """Queue a model export for ``project`` (JobAlreadyRunning if one is active)."""
    return runner(app).submit(JobKind.EXPORT, project.id, export_model_job)
