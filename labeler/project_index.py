"""A project's vector index: one per project and embedding space, kept in the data directory.

Beside the vector store (``vectors.py``)::

    vectors/<project_id>/<space>.faiss        the index (faiss's own format, no pickle)
    vectors/<project_id>/<space>.index.json   what it holds: rows of the store, checksum

The store only grows by appended rows and the index names rows by their position, so the
index catches up by adding the rows appended since (the embed job does when it ends, a
round before grouping). Both files are written atomically, the manifest last, and the
manifest carries the index file's size and SHA-256: a missing, half-written or damaged index (a
crash, a full disk, a copy cut short) fails the check and is rebuilt from the store, which
is the record. A store replaced whole (another inode) is rebuilt too.

Used for near-duplicate groups (``duplicate_groups``): each row's nearest rows through the
index, every pair checked exactly, groups the connected components. The pairs are kept
beside the index, so only rows appended since are looked up.
"""

from __future__ import annotations

import fcntl
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import LabelerError
from .learning import duplicates
from .learning.vector_index import IndexFileError, PoolIndex
from .storage import atomic_writer, file_sha256
from .vectors import VectorStore

log = logging.getLogger(__name__)

DEFAULT_DUPLICATE_THRESHOLD = 0.95
_ADD_ROWS = 50_000  # rows converted and added at a time: ~250 MB of float32 at 1280-d
_FORMAT = 1


def index_path(store: VectorStore) -> Path:
    """Where the index of ``store`` lives."""
    return store.folder / f"{store.space.key}.faiss"


def manifest_path(store: VectorStore) -> Path:
    """Where the description of the index of ``store`` lives."""
    return store.folder / f"{store.space.key}.index.json"


def _pairs_path(store: VectorStore) -> Path:
    return store.folder / f"{store.space.key}.pairs.npz"


@contextmanager
def _locked(store: VectorStore) -> Iterator[None]:
    """One writer of a project's index at a time, across processes and machines."""
    store.folder.mkdir(parents=True, exist_ok=True)
    with open(store.folder / f"{store.space.key}.index.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _store_identity(store: VectorStore) -> int:
    return store.ids_path.stat().st_ino if store.ids_path.exists() else 0


def _load(store: VectorStore) -> PoolIndex | None:
    """The saved index, or None if there is none or it cannot be trusted."""
    path = index_path(store)
    try:
        manifest = json.loads(manifest_path(store).read_text())
        if (manifest.get("format") != _FORMAT
                or manifest.get("store") != _store_identity(store)
                or manifest.get("bytes") != path.stat().st_size
                or manifest.get("sha256") != file_sha256(path)):
            raise IndexFileError(f"{path} does not match its manifest.")
        index = PoolIndex.load(path, store.space.dim)
        if len(index) != manifest.get("rows") or len(index) > len(store):
            raise IndexFileError(f"{path} holds other rows than the vector store.")
        return index
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:  # IndexFileError included
        log.warning("Rebuilding the vector index of project %s: %s", store.project_id, exc)
        return None


def _save(store: VectorStore, index: PoolIndex) -> None:
    path = index_path(store)
    with atomic_writer(path) as handle:
        index.save(Path(handle.name))
    manifest = {"format": _FORMAT, "rows": len(index), "store": _store_identity(store),
                "bytes": path.stat().st_size, "sha256": file_sha256(path)}
    # Written last: an index without a matching manifest is rebuilt, never trusted.
    with atomic_writer(manifest_path(store)) as handle:
        handle.write(json.dumps(manifest).encode())


def update_index(store: VectorStore) -> PoolIndex:
    """The index of every row of ``store``, saved; rows appended since the last save added.

    Rebuilt from the store when the saved index is missing or fails its check. Position
    ``i`` in the index is row ``i`` of the store.
    """
    with _locked(store):
        index = _load(store)
        rebuild = index is None
        if index is None:
            index = PoolIndex(store.space.dim)
        rows = len(store)
        if len(index) < rows or rebuild:
            matrix = store.matrix()
            for start in range(len(index), rows, _ADD_ROWS):
                index.add(matrix[start : min(rows, start + _ADD_ROWS)])
            _save(store, index)
        return index


def project_duplicate_threshold(settings: dict | None) -> float:
    """A project's near-duplicate threshold (cosine), from its settings.

    Raises:
        LabelerError: the setting is not a number in ``(0, 1]``.
    """
    value = (settings or {}).get("duplicate_threshold", DEFAULT_DUPLICATE_THRESHOLD)
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not 0.0 < threshold <= 1.0:
        raise LabelerError(f"The near-duplicate threshold must be a cosine similarity above 0 "
                           f"and at most 1 (0.95 finds near-identical images); it is {value!r}.")
    return threshold


def _saved_pairs(store: VectorStore, threshold: float) -> tuple[int, np.ndarray, np.ndarray]:
    """(store rows already looked up, pairs found among them) for this threshold."""
    try:
        with np.load(_pairs_path(store), allow_pickle=False) as saved:
            if (int(saved["format"]) == _FORMAT
                    and int(saved["store"]) == _store_identity(store)
                    and float(saved["threshold"]) == threshold
                    and int(saved["rows"]) <= len(store)):
                return int(saved["rows"]), saved["a"], saved["b"]
    except (OSError, KeyError, ValueError):
        pass  # missing or damaged: look every row up again
    return 0, np.empty(0, np.int64), np.empty(0, np.int64)


def duplicate_groups(store: VectorStore, image_ids: np.ndarray, threshold: float) -> np.ndarray:
    """Near-duplicate groups of a pool: rows whose cosine is >= ``threshold``, joined.

    The pairs found so far are kept beside the index (``<space>.pairs.npz``) with the
    number of store rows they cover; only rows appended since are looked up, so a round
    that brings only labels does no search at all, and one after an import searches the
    new rows only. A new threshold looks every row up again.

    Args:
        store: the pool's vector store.
        image_ids: the pool's image ids in pool order (the latest row of each image).
        threshold: cosine similarity in ``(0, 1]``.

    Returns:
        The group of each image of ``image_ids`` (``0, 1, ...`` in order of each group's
        first row), -1 for images without a near-duplicate.
    """
    image_ids = np.asarray(image_ids, dtype=np.int64)
    index = update_index(store)
    rows = store.matrix()[: len(index)]
    searched, a, b = _saved_pairs(store, threshold)
    if searched < len(rows):
        new_a, new_b = duplicates.close_pairs(index, rows, threshold, first=searched)
        a, b = np.concatenate([a, new_a]), np.concatenate([b, new_b])
        with atomic_writer(_pairs_path(store)) as handle:
            np.savez(handle, format=_FORMAT, store=_store_identity(store),
                     threshold=threshold, rows=len(rows), a=a, b=b)
    # Pairs name store rows; the pool holds the latest row of each image still present.
    store_rows = store.rows_for(image_ids)
    pool_row = np.full(len(rows) + 1, -1, dtype=np.int64)  # the last slot: rows not indexed
    pool_row[np.where(store_rows < len(rows), store_rows, len(rows))] = np.arange(len(image_ids))
    pool_row[len(rows)] = -1
    a, b = pool_row[a], pool_row[b]
    kept = (a >= 0) & (b >= 0)
    return duplicates.groups_from_pairs(len(image_ids), a[kept], b[kept])
