"""A project's rounds: the active one, and each round's fitted head on disk.

A round that trained keeps its head in ``models/<project>/round-<n>.npz``: plain arrays
(``labeler.learning.head_store``), written once, atomically, before the round is marked
done, and read with ``allow_pickle=False``. Nothing read from that folder is ever
executed, so a data directory or a backup written by someone else can hold wrong
numbers, never code.

Versions before the layout of issue 13 pickled heads as ``round-<n>.pkl``. Those files
are never read: ``retire_pickled_heads`` removes them when the server starts, and a
round whose head cannot be read is retrained from the labels by the scheduler's next
pass (``head_missing``), because labels are the record and heads are derived from them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select

from .cache import HEADS, app_cache
from .embeddings.dense_head import KERAS_DENSE, dense_arrays, dense_from_arrays
from .errors import LabelerError
from .extensions import db
from .learning.head_store import (
    LOGISTIC,
    UnreadableHead,
    logistic_arrays,
    logistic_from_arrays,
    read_head_arrays,
    write_head_arrays,
)
from .learning.heads import LogisticHead
from .models import JobStatus, ModelRound, Project
from .storage import atomic_writer, data_root

log = logging.getLogger(__name__)

HEAD_SUFFIX = ".npz"
_PICKLED_SUFFIX = ".pkl"  # the old format: never opened, only found and removed


def latest_round(project: Project, *, succeeded_only: bool = True) -> ModelRound | None:
    """The newest round (by default the newest that succeeded: the active model)."""
    query = select(ModelRound).where(ModelRound.project_id == project.id)
    if succeeded_only:
        query = query.where(ModelRound.status == JobStatus.SUCCEEDED)
    return db.session.scalar(query.order_by(ModelRound.number.desc()).limit(1))


def head_path(project_id: int, number: int) -> Path:
    """Where round ``number`` of a project keeps its fitted head."""
    return data_root() / "models" / str(int(project_id)) / f"round-{int(number)}{HEAD_SUFFIX}"


def head_arrays(head: Any) -> tuple[str, dict[str, Any]]:
    """(kind, arrays) of a fitted head, as its file stores them."""
    if isinstance(head, LogisticHead):
        return LOGISTIC, logistic_arrays(head)
    if hasattr(head, "model_"):
        return KERAS_DENSE, dense_arrays(head)
    raise TypeError(f"A {type(head).__name__} cannot be saved as a round's head.")


def head_from_arrays(kind: str, arrays: dict[str, Any]) -> Any:
    """The head that ``head_arrays`` gave ``(kind, arrays)`` for.

    Raises:
        UnreadableHead: an unknown kind, or arrays that do not make that head.
    """
    if kind == LOGISTIC:
        return logistic_from_arrays(arrays)
    if kind == KERAS_DENSE:
        try:
            return dense_from_arrays(arrays)
        except ValueError as exc:
            raise UnreadableHead(str(exc)) from exc
    raise UnreadableHead(f"a head of unknown kind {kind!r}")


def save_head(project_id: int, number: int, head: Any) -> Path:
    """Write a round's fitted head (whole or not at all); returns its path."""
    kind, arrays = head_arrays(head)
    path = head_path(project_id, number)
    with atomic_writer(path) as handle:
        write_head_arrays(handle, kind, arrays)
    return path


def read_head(path: Path) -> Any:
    """The head saved at ``path``, read as data only.

    Raises:
        UnreadableHead: the file is not a head saved as plain arrays.
    """
    return head_from_arrays(*read_head_arrays(str(path)))


def load_head(project: Project, round_: ModelRound | None = None) -> Any | None:
    """The fitted head of a round (default: the active one), or None if it has none.

    A head file that cannot be read as data counts as none (and is logged): the round is
    then retrained from the labels, never half-trusted.
    """
    round_ = round_ or latest_round(project)
    if round_ is None or not round_.metrics.get("trained"):
        return None
    path = head_path(project.id, round_.number)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    # Keyed by the file's identity: a round writes a new file rather than changing one, so
    # every `next` request reuses the head it loaded once.
    key = (project.id, round_.number, stat.st_ino, stat.st_mtime_ns, stat.st_size)
    try:
        return app_cache().get_or_build(HEADS, key, lambda: read_head(path))
    except UnreadableHead as exc:
        log.warning("Round %d of project %r has an unreadable head file %s (%s); it is "
                    "retrained from the labels.", round_.number, project.name, path, exc)
        return None


def confidence_thresholds(project: Project, min_precision: float) -> dict[str, float | None]:
    """Per class name, the calibrated confidence an auto-tag of the active round needs for
    its class's out-of-fold precision to reach ``min_precision`` (None: no auto-tag does).

    Raises:
        LabelerError: no trained round measured it (too few labels, or an older round), or
            ``min_precision`` is not one a round records.
    """
    round_ = latest_round(project)
    table = ((round_.metrics or {}).get("precision_thresholds") or {}) if round_ else {}
    if not table:
        raise LabelerError("No round has measured its precision yet (every class needs at "
                           "least 2 labels); label more images, retrain, then export again.")
    key = next((k for k in table if abs(float(k) - min_precision) < 1e-9), None)
    if key is None:
        raise LabelerError(f"--min-precision {min_precision} is not measured; choose one of "
                           f"{', '.join(sorted(table))}.")
    names = {str(c.id): c.name for c in project.classes}
    return {names[k]: v for k, v in table[key].items() if k in names}


def head_missing(project: Project) -> bool:
    """Whether the project's newest round trained a head that cannot be found any more.

    True for rounds whose head was an old pickle (removed at start-up) or lost: the
    scheduler then runs a round to train it again. Only the newest round counts, so a
    retrain that could not train (too few labels now) is not retried in a loop.
    """
    newest = latest_round(project, succeeded_only=False)
    if newest is None or newest.status != JobStatus.SUCCEEDED:
        return False
    if not (newest.metrics or {}).get("trained"):
        return False
    return not head_path(project.id, newest.number).is_file()


def retire_pickled_heads(home: Path) -> int:
    """Remove the heads older versions pickled (``round-<n>.pkl``); return how many.

    They are never unpickled: a pickle runs whatever code it names, so reading one from a
    shared data directory would let anyone who can write there run code in the server.
    Their rounds are retrained from the labels (``head_missing``).
    """
    removed = 0
    for path in (Path(home) / "models").glob(f"*/round-*{_PICKLED_SUFFIX}"):
        path.unlink(missing_ok=True)
        removed += 1
    if removed:
        log.warning("Removed %d round heads an older labeler saved as pickles, which this "
                    "version never loads; their projects retrain from the labels.", removed)
    return removed
