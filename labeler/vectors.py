"""The per-project embedding matrix: append-only float16 rows, memory-mapped for reading.

One pair of files per project and embedding space (backbone name, version, input size)::

    vectors/<project_id>/<space>.f16   rows of ``dim`` float16 values, row-major
    vectors/<project_id>/<space>.ids   one little-endian int64 image id per row
    vectors/<project_id>/<space>.json  the space: backbone name, version, input size, dim

Why files and not SQL rows: scoring a pool reads every vector at once. A 1,000,000 × 1280
float16 matrix is 2.4 GiB, one ``np.memmap`` away, instead of a million BLOB rows.

Crash safety: a batch appends its vectors, then its ids, then fsyncs both. A reader trusts
only rows present in both files, so a crash mid-append leaves at most a tail that the next
writer cuts off; no half-written vector is ever visible. Switching a project's backbone
opens a new space beside the old one instead of mixing vectors of two networks.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .cache import ID_INDEX, AppCache
from .storage import atomic_writer

ID_DTYPE = np.dtype("<i8")
VECTOR_DTYPE = np.dtype("<f2")


@dataclass(frozen=True)
class EmbeddingSpace:
    """What produced a set of vectors; vectors of different spaces are never mixed."""

    backbone: str
    version: str
    input_size: int
    dim: int

    @property
    def key(self) -> str:
        """A file-name-safe identifier, e.g. ``efficientnet-lite0_v1_224``."""
        name = re.sub(r"[^A-Za-z0-9.-]+", "-", self.backbone).strip("-")[:80]
        return f"{name}_v{re.sub(r'[^A-Za-z0-9.-]+', '-', self.version)}_{self.input_size}"


def _id_index(ids_path: Path, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Row order sorting the first ``rows`` ids, and the sorted ids."""
    ids = np.fromfile(ids_path, dtype=ID_DTYPE, count=rows)
    # Stable sort, so the last occurrence of an id (a re-embedded image) is found last.
    order = np.argsort(ids, kind="stable")
    order.flags.writeable = False
    sorted_ids = ids[order]
    sorted_ids.flags.writeable = False
    return order, sorted_ids


class VectorStore:
    """The embedding matrix of one project in one embedding space."""

    def __init__(self, root: Path, project_id: int, space: EmbeddingSpace,
                 cache: AppCache | None = None) -> None:
        """The store of ``project_id`` in ``space`` under data directory ``root``.

        ``cache`` (the app's) keeps the sorted id index between calls: serving an image's
        explanation looks up one row, and re-reading and sorting a million ids for that
        would cost ~100 ms a request. Without one, each lookup builds it afresh.
        """
        self.project_id = int(project_id)
        self.cache = cache
        self.space = space
        self.folder = Path(root) / "vectors" / str(int(project_id))
        base = self.folder / space.key
        self.vectors_path = base.with_suffix(".f16")
        self.ids_path = base.with_suffix(".ids")
        self.meta_path = base.with_suffix(".json")
        self._row_bytes = space.dim * VECTOR_DTYPE.itemsize

    def _complete_rows(self) -> int:
        """Rows present in both files (a crash may leave a longer tail in one of them)."""
        if not self.vectors_path.exists() or not self.ids_path.exists():
            return 0
        vector_rows = self.vectors_path.stat().st_size // self._row_bytes
        id_rows = self.ids_path.stat().st_size // ID_DTYPE.itemsize
        return min(vector_rows, id_rows)

    def __len__(self) -> int:
        return self._complete_rows()

    def image_ids(self) -> np.ndarray:
        """Image id of every row, in row order (int64)."""
        rows = self._complete_rows()
        if rows == 0:
            return np.empty(0, dtype=ID_DTYPE)
        return np.fromfile(self.ids_path, dtype=ID_DTYPE, count=rows)

    def matrix(self) -> np.ndarray:
        """All rows as a read-only memory map of shape (rows, dim), float16."""
        rows = self._complete_rows()
        if rows == 0:
            return np.empty((0, self.space.dim), dtype=VECTOR_DTYPE)
        return np.memmap(self.vectors_path, dtype=VECTOR_DTYPE, mode="r",
                         shape=(rows, self.space.dim))

    def rows_for(self, image_ids: np.ndarray | list[int]) -> np.ndarray:
        """Row index of each image id (-1 where it has none); the latest row wins."""
        wanted = np.asarray(image_ids, dtype=ID_DTYPE)
        rows = self._complete_rows()
        if rows == 0:
            return np.full(len(wanted), -1, dtype=np.int64)
        if self.cache is None:
            order, sorted_ids = _id_index(self.ids_path, rows)
        else:
            # The files only grow by appends (or are replaced whole), so rows and the
            # file's identity name one content.
            stat = self.ids_path.stat()
            key = (self.project_id, str(self.ids_path), rows, stat.st_ino, stat.st_mtime_ns)
            order, sorted_ids = self.cache.get_or_build(
                ID_INDEX, key, lambda: _id_index(self.ids_path, rows))
        right = np.searchsorted(sorted_ids, wanted, side="right") - 1
        found = (right >= 0) & (sorted_ids[np.clip(right, 0, None)] == wanted)
        return np.where(found, order[np.clip(right, 0, None)], -1)

    def vectors_for(self, image_ids: np.ndarray | list[int]) -> np.ndarray:
        """Float32 vectors of the given images (KeyError if one has none)."""
        rows = self.rows_for(image_ids)
        if (rows < 0).any():
            missing = np.asarray(image_ids)[rows < 0][:5].tolist()
            raise KeyError(f"no embedding for images {missing}")
        return np.asarray(self.matrix()[rows], dtype=np.float32)

    @contextmanager
    def writer(self) -> Iterator[VectorWriter]:
        """Exclusive appender (an advisory lock keeps two jobs from interleaving rows)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.meta_path.exists():
            with atomic_writer(self.meta_path) as handle:
                handle.write(json.dumps(asdict(self.space), indent=2).encode())
        lock_path = self.folder / f"{self.space.key}.lock"
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                rows = self._complete_rows()
                # Cut any tail a crash left behind, so the two files line up again.
                for path, width in ((self.vectors_path, self._row_bytes),
                                    (self.ids_path, ID_DTYPE.itemsize)):
                    with open(path, "ab") as handle:
                        handle.truncate(rows * width)
                yield VectorWriter(self)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class VectorWriter:
    """Appends batches of rows; each append is durable when it returns."""

    def __init__(self, store: VectorStore) -> None:
        self._store = store

    def append(self, image_ids: np.ndarray | list[int], vectors: np.ndarray) -> None:
        ids = np.asarray(image_ids, dtype=ID_DTYPE)
        matrix = np.ascontiguousarray(vectors, dtype=VECTOR_DTYPE)
        if matrix.shape != (len(ids), self._store.space.dim):
            raise ValueError(f"expected {len(ids)} vectors of dim {self._store.space.dim}, "
                             f"got shape {matrix.shape}")
        if not np.isfinite(matrix).all():
            raise ValueError("refusing to store vectors with NaN or infinity")
        # Vectors first, ids second: a row only counts once its id is there.
        for path, payload in ((self._store.vectors_path, matrix.tobytes()),
                              (self._store.ids_path, ids.tobytes())):
            with open(path, "ab") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
