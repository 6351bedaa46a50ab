"""Jobs that lead to the next one: import, then embed; embed, then rank in a round.

New images are useless until embedded, and new vectors are images no round has ranked
and the map has not laid out: so an import (by upload, or ``labeler import --queue`` on a
worker) queues an embedding, and an embedding that stored vectors queues a round and the
map's layout. These are the job functions and the
calls that queue them; the work itself is the services' (``importer``,
``project_vectors``, ``training``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask, current_app

from ..errors import LabelerError
from ..extensions import db
from ..finetuning import finetune_project
from ..importer import ImportReport, import_paths, import_uploads
from ..models import Job, Project, User
from ..project_vectors import embed_project, embedding_counts
from ..sources import Upload
from .backend import runner
from .kinds import JobKind
from .map_layouts import submit_map_layout
from .rows import JobAlreadyRunning
from .triggers import submit_retrain

MAX_REJECTIONS_SHOWN = 20  # in an import job's message; the rest are counted


def embed_then_round(progress: Callable[..., None], project_id: int) -> str:
    """Job: embed the project's new images, then queue a round so they are ranked and tagged.

    New vectors mean images no round has predicted or ranked yet, so a round follows
    whenever this job embedded anything, not only when enough labels arrived; and the
    map's t-SNE layout is queued for the new vectors.
    """
    before, _ = embedding_counts(db.session.get(Project, project_id))
    summary = embed_project(progress=progress, project_id=project_id)
    project = db.session.get(Project, project_id)
    if project is not None and embedding_counts(project)[0] > before:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            submit_retrain(app, project)
        except JobAlreadyRunning:
            pass  # the running round started after some of these vectors; the next catches up
        # A layout already queued or running is of fewer rows; opening the map queues
        # the next one once it has finished.
        submit_map_layout(app, project)
    return summary


def submit_finetune(app: Flask, project: Project) -> Job:
    """Queue a fine-tune of the project's backbone (raises JobAlreadyRunning if one is active).

    The job trains, judges, and when adopted re-embeds the pool and runs a round
    (``finetuning.finetune_project``); the dashboard's button and the API start it.
    """
    return runner(app).submit(JobKind.FINETUNE, project.id, finetune_project)


def submit_embedding(app: Flask, project: Project) -> Job | None:
    """Queue an embed job for ``project`` on the server's worker (None if one is active)."""
    try:
        return runner(app).submit(JobKind.EMBED, project.id, embed_then_round)
    except JobAlreadyRunning:
        return None


def import_then_embed(progress: Callable[..., None], project_id: int, paths: list[str],
                      labels_from_folders: bool = False) -> str:
    """Job: import ``paths`` (as this process sees them), then queue their embedding.

    What ``labeler import --queue`` hands to a ``labeler worker``: the paths must exist at
    the same place on the worker's machine (a shared file system). Returns the summary,
    with the first rejections, for the Job row.
    """
    project = db.session.get(Project, project_id)
    if project is None:
        raise LabelerError(f"Project {project_id} no longer exists.")

    def on_progress(done: int, total: int) -> None:
        progress(done / total if total else 0.0, f"Imported {done} of {total} files")

    report = import_paths(project, [Path(p) for p in paths],
                          labels_from_folders=labels_from_folders, on_progress=on_progress)
    if report.imported:
        submit_embedding(current_app._get_current_object(), project)  # type: ignore[attr-defined]
    shown = [f"rejected {r.name}: {r.reason}" for r in report.rejected[:MAX_REJECTIONS_SHOWN]]
    if len(report.rejected) > MAX_REJECTIONS_SHOWN:
        shown.append(f"... and {len(report.rejected) - MAX_REJECTIONS_SHOWN} more rejected")
    return "\n".join([report.summary(), *shown])


def submit_import(app: Flask, project: Project, paths: list[str],
                  labels_from_folders: bool) -> Job:
    """Queue ``import_then_embed`` of ``paths`` (absolute, as a worker will see them)."""
    return runner(app).submit(JobKind.IMPORT, project.id, import_then_embed, paths=paths,
                              labels_from_folders=labels_from_folders)


def upload_then_embed(app: Flask, project: Project, files: list[Upload], *,
                      labels_from_folders: bool, annotator: User) -> ImportReport:
    """Import files uploaded through a page or the API, and queue their embedding.

    The one upload flow: the upload page and ``POST /api/v1/projects/<id>/images`` both
    call it, so the two cannot drift apart.
    """
    report = import_uploads(project, files, labels_from_folders=labels_from_folders,
                            annotator=annotator)
    if report.imported:
        submit_embedding(app, project)
    return report
