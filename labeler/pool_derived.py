"""What a round derives from a project's vectors alone, kept beside them per vector version.

Near-duplicate groups and the pool's neighbour graph depend on the vectors and nothing
else, yet cost more than the rest of a round on a large pool (grouping about 19 s at
1,000,000 images; the graph 5.6 s at 20,000 nodes). Rounds that only bring new labels
reuse the last result: an ``.npz`` of plain arrays next to the vector file
(``<space>.duplicates.npz``, ``<space>.graph.npz``), keyed by that file's identity and the
pool's size, written atomically, read with ``allow_pickle=False``. A file that is missing,
damaged or made for other vectors is simply computed again.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .learning import duplicates
from .learning.pool_graph import PoolGraph, build_pool_graph
from .storage import atomic_writer
from .vectors import VectorStore

SEED = 0
# Bumped when the graph is built differently, so older files are rebuilt, not trusted.
_GRAPH_VERSION = 1


def vector_key(store: VectorStore, n_rows: int, *extra: int) -> np.ndarray:
    """The identity of the vectors a pool was read from: a new or appended file changes it."""
    stat = store.vectors_path.stat()
    return np.array([n_rows, stat.st_ino, stat.st_size, stat.st_mtime_ns, *extra],
                    dtype=np.int64)


def _beside(store: VectorStore, suffix: str) -> Path:
    return store.vectors_path.parent / f"{store.vectors_path.stem}.{suffix}.npz"


def _read(path: Path, key: np.ndarray) -> dict[str, np.ndarray] | None:
    """The arrays saved at ``path`` under ``key``, or None (missing, damaged or stale)."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            if not np.array_equal(saved["key"], key):
                return None
            return {name: saved[name] for name in saved.files if name != "key"}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def _cached(path: Path, key: np.ndarray, load: Callable[[dict[str, np.ndarray]], object],
            build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    saved = _read(path, key)
    if saved is not None:
        try:
            load(saved)
            return saved
        except ValueError:
            pass  # arrays that do not make the thing: compute it again
    arrays = build()
    with atomic_writer(path) as handle:
        np.savez(handle, key=key, **arrays)
    return arrays


def near_duplicate_groups(store: VectorStore, embeddings: np.ndarray) -> np.ndarray:
    """The pool's near-duplicate groups (one per row, -1 for none), computed once per version."""
    n_rows = len(embeddings)

    def check(saved: dict[str, np.ndarray]) -> None:
        if len(saved["groups"]) != n_rows:
            raise ValueError("groups of another pool")

    arrays = _cached(_beside(store, "duplicates"), vector_key(store, n_rows, SEED), check,
                     lambda: {"groups": duplicates.near_duplicate_groups(embeddings,
                                                                         seed=SEED)})
    return arrays["groups"]


def pool_graph(store: VectorStore, embeddings: np.ndarray) -> PoolGraph:
    """The pool's neighbour graph for semi-supervised heads, built once per vector version."""
    n_rows = len(embeddings)

    def load(saved: dict[str, np.ndarray]) -> PoolGraph:
        graph = PoolGraph.from_arrays(saved)
        if graph.n_items != n_rows:
            raise ValueError("a graph of another pool")
        return graph

    arrays = _cached(_beside(store, "graph"), vector_key(store, n_rows, SEED, _GRAPH_VERSION),
                     load, lambda: build_pool_graph(embeddings, rng=SEED).arrays())
    return load(arrays)
