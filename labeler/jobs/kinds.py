"""The kinds of background job. ``Job.kind`` stays a string column holding these values."""

from __future__ import annotations

import enum


class JobKind(enum.StrEnum):
    """What a job does; also its lane: one active job per kind and project, one RQ queue
    and one in-process thread per kind."""

    IMPORT = "import"
    EMBED = "embed"
    RETRAIN = "retrain"
    EXPORT = "export"
    MAP = "map"  # the embedding map's t-SNE layout
    FINETUNE = "finetune"
