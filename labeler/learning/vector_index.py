"""Cosine vector indexes over embeddings (faiss), arrays in and out.

Two kinds, for the two questions the app asks (bench/vector_index.py measured both):

* ``PoolIndex``: every row of a pool, an HNSW graph over float16 rows (``IndexHNSWSQ``).
  Near-duplicates are each other's nearest neighbours, so each row's few nearest rows
  through the graph give the candidate pairs of ``learning.duplicates``. Rows are added
  in order and named by their position, the vector store's row number: a store that only
  grows by appends maps onto an index that only grows by adds.
* ``ExactIndex``: a flat inner-product scan of unit rows (``IndexFlatIP``), for the
  nearest *labelled* images: a few thousand rows that change with every label, where an
  exact answer costs a few milliseconds and an approximate graph would only lose recall.

Why faiss rather than usearch or hnswlib: on this 2-core machine it built the HNSW graph
of 1280-d rows several times faster than usearch, keeps rows as float16 (hnswlib keeps
float32, twice the memory), has the exact flat index in the same library, and saves to
and reads from its own file format (no pickle).
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from .float16 import exact_float32

# Graph degree and search breadths. Near-duplicates sit right next to each other, so a
# narrow breadth finds them; building is the cost (bench/vector_index.py).
CONNECTIVITY = 16
EXPANSION_ADD = 40
EXPANSION_SEARCH = 32
# Neighbours looked up per row when grouping; larger groups still join through chains.
GROUP_NEIGHBOURS = 8
# The graph's similarities are of float16 rows; let through pairs slightly below the
# threshold, then check them exactly, so rounding never drops a pair at the threshold.
_SEARCH_SLACK = 0.01
_BLOCK_ROWS = 20_000


class IndexFileError(ValueError):
    """An index file that is missing, cut short, damaged or not of the expected shape."""


def unit_float32(rows: np.ndarray) -> np.ndarray:
    """Rows as float32 of length 1 (rows of zeros stay zero and match nothing)."""
    rows = np.asarray(rows)
    rows = exact_float32(rows) if rows.dtype == np.float16 else rows.astype(np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))[:, None]
    return np.divide(rows, norms, out=rows, where=norms > 0)


class PoolIndex:
    """An HNSW index of unit float16 rows, named by their position (0, 1, ...)."""

    def __init__(self, dim: int, *, _index: faiss.Index | None = None) -> None:
        """An empty index for ``dim``-dimensional rows."""
        self.dim = int(dim)
        if _index is None:
            _index = faiss.IndexHNSWSQ(self.dim, faiss.ScalarQuantizer.QT_fp16,
                                       CONNECTIVITY, faiss.METRIC_INNER_PRODUCT)
            _index.hnsw.efConstruction = EXPANSION_ADD
        _index.hnsw.efSearch = EXPANSION_SEARCH  # not part of the saved file
        self._index = _index

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        """Append rows (float16 or float32, e.g. a slice of a memory map) in blocks."""
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"Expected rows of {self.dim} values; got shape {vectors.shape}.")
        for start in range(0, len(vectors), _BLOCK_ROWS):
            self._index.add(unit_float32(vectors[start : start + _BLOCK_ROWS]))

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest rows of each vector: (positions, cosines), -1 where fewer."""
        similarity, found = self._index.search(unit_float32(vectors), k)
        return found.astype(np.int64), similarity

    def close_pairs(self, vectors: np.ndarray, threshold: float, *,
                    neighbours: int = GROUP_NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
        """Candidate pairs (row of ``vectors``, position in the index) at about ``threshold``.

        Args:
            vectors: the rows to look up, ``(n, dim)``; may be a float16 memory map. When
                they are the indexed rows themselves, each row finds itself: the caller
                drops such pairs (``a == b``).
            threshold: cosine similarity; pairs a little below it are included too (the
                graph holds float16 rows), so check them with ``verified_pairs``.
            neighbours: nearest rows looked up per row.
        """
        found_a, found_b = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
        if not len(self):
            return found_a[0], found_b[0]
        count = min(neighbours + 1, len(self))
        for start in range(0, len(vectors), _BLOCK_ROWS):
            near, similarity = self.search(vectors[start : start + _BLOCK_ROWS], count)
            own = np.arange(start, start + len(near))[:, None].repeat(count, axis=1)
            keep = (near >= 0) & (similarity >= threshold - _SEARCH_SLACK)
            found_a.append(own[keep])
            found_b.append(near[keep])
        return np.concatenate(found_a), np.concatenate(found_b)

    def save(self, path: Path) -> None:
        """Write the index to ``path`` in faiss's own format (callers rename it into place)."""
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, dim: int) -> PoolIndex:
        """Read an index written by ``save``.

        Raises:
            IndexFileError: the file is missing, cut short, damaged or of another shape.
        """
        try:
            # read_index returns the concrete class and owns it; a downcast_index wrapper
            # would not, and the index would be freed under it.
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexFileError(f"{path} is not a readable index.") from exc
        if not isinstance(index, faiss.IndexHNSWSQ) or index.d != dim:
            raise IndexFileError(f"{path} is not an index of {dim}-dimensional rows.")
        return cls(dim, _index=index)


class ExactIndex:
    """An exact inner-product index of unit rows, each named by an id (an image id)."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Index ``vectors`` (one row per id; float16 or float32)."""
        self.ids = np.asarray(ids, dtype=np.int64)
        self.dim = int(vectors.shape[1])
        self._index = faiss.IndexFlatIP(self.dim)
        if len(self.ids):
            self._index.add(unit_float32(vectors))

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ids of the ``k`` rows most like ``vector`` and their cosines, best first."""
        k = min(k, len(self.ids))
        if k < 1:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        similarity, found = self._index.search(unit_float32(vector.reshape(1, -1)), k)
        return self.ids[found[0]], similarity[0]
