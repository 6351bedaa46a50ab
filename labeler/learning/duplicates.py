"""Near-duplicate images: groups of pool rows whose embeddings are nearly parallel.

Groups are the connected components of the graph "cosine >= threshold". Comparing every
pair is out of reach (5 * 10**11 pairs at 1,000,000 rows), so candidates come from a
vector index (``learning.vector_index.PoolIndex``): each row's few nearest rows. Every
candidate is then checked exactly on the stored rows, so no group is ever wrong; what the
approximate index may cost is a missed pair (bench/vector_index.py measures how many).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .vector_index import PoolIndex, unit_float32

_VERIFY_ROWS = 8_192  # row pairs read and compared at a time


def near_duplicate_groups(embeddings: np.ndarray, threshold: float = 0.95) -> np.ndarray:
    """Group near-identical images: rows whose embeddings have cosine similarity >= threshold.

    Builds an index of the rows, then ``close_pairs`` and ``groups_from_pairs``; the app
    keeps its index and its pairs instead (``labeler.project_index``) and only looks up
    the rows that arrived since.

    Args:
        embeddings: Shape ``(n_items, dim)``, float16 (e.g. the memory-mapped pool) or float32.
        threshold: Cosine similarity at or above which two rows are near-duplicates, in
            ``(0, 1]``.

    Returns:
        ``int64`` array of shape ``(n_items,)``: the group of each row, numbered ``0, 1, ...``
        in order of each group's first row; ``-1`` for rows without a near-duplicate. Every
        group has at least two rows; a row of zeros has no direction and is in none.

    Raises:
        ValueError: ``embeddings`` is not 2-D, or ``threshold`` is out of range.
    """
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n_items, dim); got shape {embeddings.shape}.")
    n_rows = embeddings.shape[0]
    if n_rows < 2:
        return np.full(n_rows, -1, dtype=np.int64)
    index = PoolIndex(embeddings.shape[1])
    index.add(embeddings)
    return groups_from_pairs(n_rows, *close_pairs(index, embeddings, threshold))


def close_pairs(index: PoolIndex, rows: np.ndarray, threshold: float,
                first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (a, b) with ``a >= first`` whose rows have cosine >= ``threshold``.

    Args:
        index: an index of ``rows`` (position ``i`` is row ``i``).
        rows: every indexed row, ``(n, dim)``; may be a float16 memory map.
        threshold: cosine similarity, in ``(0, 1]``.
        first: rows before it were looked up before; only ``rows[first:]`` are now.
            A pair of an earlier row and a newer one is found from the newer row.

    Raises:
        ValueError: ``threshold`` is out of range.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"Need 0 < threshold <= 1; got {threshold}.")
    a, b = index.close_pairs(rows[first:], threshold)
    a += first
    inside = b < len(rows)  # the index may hold rows appended after ``rows`` was read
    return verified_pairs(rows, a[inside], b[inside], threshold)


def verified_pairs(vectors: np.ndarray, a: np.ndarray, b: np.ndarray,
                   threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of rows (a, b), a != b, whose rows of ``vectors`` have cosine >= threshold."""
    keep = np.zeros(len(a), dtype=bool)
    for start in range(0, len(a), _VERIFY_ROWS):
        left = unit_float32(vectors[a[start : start + _VERIFY_ROWS]])
        right = unit_float32(vectors[b[start : start + _VERIFY_ROWS]])
        keep[start : start + len(left)] = np.einsum("ij,ij->i", left, right) >= threshold
    keep &= a != b
    return a[keep], b[keep]


def groups_from_pairs(n_rows: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of the pairs, numbered 0, 1, ... by first row; -1 when alone."""
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n_rows, n_rows))
    component = connected_components(graph, directed=False)[1]
    sizes = np.bincount(component)
    _, first_rows = np.unique(component, return_index=True)
    firsts = np.sort(first_rows[sizes[component[first_rows]] >= 2])
    number = np.full(len(sizes), -1, dtype=np.int64)
    number[component[firsts]] = np.arange(len(firsts))
    return number[component]
