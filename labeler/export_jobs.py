"""The model export as a background job: build the ``.keras`` file, then offer it.

Building the model loads TensorFlow and the backbone: about 7-9 s and 600 MiB the first
time in a process, under a second after that (``bench/model_export_time.py``). Inside a
web request that is a long wait with no feedback and a web worker grown by the size of
TensorFlow. As a job it runs where jobs run (the server's job thread, or a ``labeler
worker`` with ``LABELER_QUEUE_URL``), shows its status like any other job, and leaves a
file that is downloaded (and downloaded again) without building anything.

Files live in ``data_root()/exports/<project id>/round-<N>.job-<J>.keras``, so the page
knows which round a file holds; each successful export removes the project's older ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from . import export
from .errors import LabelerError
from .extensions import db
from .jobs import Progress, runner
from .models import Job, ModelRound, Project
from .rounds import head_path, latest_round
from .storage import data_root

EXPORT_JOB = "export"
_MODEL_FILE = re.compile(r"^round-(\d+)\.job-(\d+)\.keras$")


@dataclass(frozen=True)
class BuiltModel:
    """A model file an export job left for download."""

    path: Path
    round_number: int
    job_id: int
    size_bytes: int


def exports_dir(project_id: int) -> Path:
    """Where a project's built model files are kept."""
    return data_root() / "exports" / str(project_id)


def built_model(project_id: int) -> BuiltModel | None:
    """The newest model file built for the project, or None.

    Files being written have a temporary name starting with a dot and are never listed.
    """
    newest: BuiltModel | None = None
    folder = exports_dir(project_id)
    for path in folder.iterdir() if folder.is_dir() else ():
        match = _MODEL_FILE.match(path.name)
        if match is None:
            continue
        try:
            size = path.stat().st_size
        except FileNotFoundError:  # removed by a newer export meanwhile
            continue
        found = BuiltModel(path, int(match[1]), int(match[2]), size)
        if newest is None or found.job_id > newest.job_id:
            newest = found
    return newest


def trained_round(project: Project) -> ModelRound | None:
    """The active round if it trained a head that can be exported, else None."""
    round_ = latest_round(project)
    if round_ is None or not (round_.metrics or {}).get("trained"):
        return None
    return round_ if head_path(project.id, round_.number).exists() else None


def latest_export_job(project: Project) -> Job | None:
    """The project's most recent model export job, whatever its status."""
    return db.session.scalar(select(Job).where(Job.project_id == project.id,
                                               Job.kind == EXPORT_JOB)
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
        if _MODEL_FILE.match(older.name) and older != path:
            older.unlink(missing_ok=True)
    size_mb = path.stat().st_size / 1e6
    return f"The model of round {round_.number} is ready to download ({size_mb:.1f} MB)."


def submit_model_export(app: Flask, project: Project) -> Job:
    """Queue a model export for ``project`` (JobAlreadyRunning if one is active)."""
    return runner(app).submit(EXPORT_JOB, project.id, export_model_job)
