"""Model files built for download: where an export job leaves them, which one is newest.

Files live in ``data_root()/exports/<project id>/round-<N>.job-<J>.keras``, so the export
page knows which round a file holds; each successful export removes the project's older
ones (``labeler.jobs.exports`` builds them, ``labeler.model_export`` writes them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .models import ModelRound, Project
from .rounds import head_path, latest_round
from .storage import data_root

MODEL_FILE = re.compile(r"^round-(\d+)\.job-(\d+)\.keras$")


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
        match = MODEL_FILE.match(path.name)
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
