"""2-D layouts of an embedding matrix, for the embedding map. numpy only, no Flask.

The matrix may be a float16 memory map of a million rows: the projection is fitted on a
sample of at most ``sample_size`` rows (float32, about 100 MB for 20,000 × 1280) and applied
to all rows in chunks, so the whole pool is never converted to float32 or float64 at once.

PCA is the default and always available. UMAP is used only when asked for and the ``umap``
package is importable; it is not a dependency.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

DEFAULT_SAMPLE = 20_000
DEFAULT_CHUNK = 16_384  # rows per float32 chunk: 80 MB at 1280 dimensions
METHODS = ("pca", "umap")


@dataclass(frozen=True)
class PCAModel:
    """A fitted linear projection: ``(x - mean) @ components.T``."""

    mean: np.ndarray  # (dim,) float32
    components: np.ndarray  # (n_components, dim) float32, orthonormal rows
    explained_variance_ratio: np.ndarray  # (n_components,) float64


@dataclass(frozen=True)
class Projection:
    """Coordinates of every row, and how they were made."""

    coords: np.ndarray  # (rows, 2) float32
    method: str
    explained_variance: list[float] = field(default_factory=list)


def umap_available() -> bool:
    """Whether the optional ``umap`` package (umap-learn) can be imported."""
    return importlib.util.find_spec("umap") is not None


def sample_rows(n_rows: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices of a reproducible random sample (all rows when there are few).

    Sorted, so reading them from a memory map walks the file forwards.
    """
    if n_rows <= size:
        return np.arange(n_rows, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=size, replace=False)).astype(np.int64)


def _as_float32(rows: np.ndarray) -> np.ndarray:
    # float16 vectors can hold inf/nan after an overflow; one bad row must not blank the map.
    return np.nan_to_num(np.asarray(rows, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def fit_pca(matrix: np.ndarray, n_components: int = 2, sample_size: int = DEFAULT_SAMPLE,
            seed: int = 0) -> PCAModel:
    """Fit PCA on a sample of ``matrix``'s rows.

    Uses the eigen-decomposition of the (dim × dim) covariance of the sample, which is
    exact, cheap for embedding widths (1280² values) and deterministic. Each component's
    sign is fixed (its largest-magnitude loading is positive) so refits agree.

    Args:
        matrix: (rows, dim) array of any float dtype; a memory map is read only in part.
        n_components: Output dimensions; missing ones (dim or rows too small) are zero.
        sample_size: Most rows used for fitting.
        seed: Seed of the row sample.

    Returns:
        The fitted model.
    """
    n_rows, dim = matrix.shape
    sample = _as_float32(matrix[sample_rows(n_rows, sample_size, seed)])
    mean = sample.mean(axis=0, dtype=np.float64).astype(np.float32) if n_rows else np.zeros(
        dim, dtype=np.float32)
    components = np.zeros((n_components, dim), dtype=np.float32)
    ratio = np.zeros(n_components, dtype=np.float64)
    if n_rows >= 2 and dim > 0:
        centred = sample - mean
        covariance = (centred.T @ centred).astype(np.float64) / (len(sample) - 1)
        # Only the top eigenpairs are needed; asking LAPACK for just those is several times
        # faster than a full decomposition at 1280 dimensions. The trace is the total variance.
        top = min(n_components, dim)
        eigenvalues, eigenvectors = scipy.linalg.eigh(
            covariance, subset_by_index=[dim - top, dim - 1])  # ascending
        order = np.argsort(eigenvalues)[::-1]
        total = float(max(np.trace(covariance), 0.0))
        for k, index in enumerate(order):
            vector = eigenvectors[:, index]
            if vector[np.argmax(np.abs(vector))] < 0:
                vector = -vector
            components[k] = vector
            if total > 0:
                ratio[k] = max(float(eigenvalues[index]), 0.0) / total
    return PCAModel(mean=mean, components=components, explained_variance_ratio=ratio)


def transform(matrix: np.ndarray, model: PCAModel, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """Apply a fitted PCA to all rows, ``chunk_size`` rows at a time.

    Returns:
        (rows, n_components) float32 coordinates.
    """
    n_rows = matrix.shape[0]
    out = np.empty((n_rows, model.components.shape[0]), dtype=np.float32)
    projection = model.components.T
    # (x - mean) @ P == x @ P - mean @ P: no centred copy of each chunk is made.
    shift = model.mean @ projection
    for start in range(0, n_rows, chunk_size):
        chunk = np.asarray(matrix[start:start + chunk_size], dtype=np.float32)
        with np.errstate(invalid="ignore", over="ignore"):  # handled just below
            coords = chunk @ projection - shift
        bad = ~np.isfinite(coords).all(axis=1)
        if bad.any():  # rare: redo only the rows holding inf/nan, with those zeroed
            coords[bad] = _as_float32(chunk[bad]) @ projection - shift
        out[start:start + len(chunk)] = coords
    return out


#: The fewest rows UMAP is asked to lay out (its default n_neighbors is 15).
UMAP_MIN_ROWS = 16


def _umap(matrix: np.ndarray, sample_size: int, seed: int, chunk_size: int) -> np.ndarray:
    import umap  # optional; callers check umap_available() first

    reducer = umap.UMAP(n_components=2, random_state=seed)
    reducer.fit(_as_float32(matrix[sample_rows(matrix.shape[0], sample_size, seed)]))
    out = np.empty((matrix.shape[0], 2), dtype=np.float32)
    for start in range(0, matrix.shape[0], chunk_size):
        chunk = _as_float32(matrix[start:start + chunk_size])
        out[start:start + len(chunk)] = reducer.transform(chunk)
    return out


def layout_2d(matrix: np.ndarray, method: str = "pca", sample_size: int = DEFAULT_SAMPLE,
            seed: int = 0, chunk_size: int = DEFAULT_CHUNK) -> Projection:
    """2-D coordinates of every row of ``matrix``.

    Args:
        matrix: (rows, dim) embeddings, e.g. ``VectorStore.matrix()`` (float16 memmap).
        method: ``"pca"``, or ``"umap"`` (falls back to PCA when umap is not installed or
            there are at most ``UMAP_MIN_ROWS`` rows).
        sample_size: Most rows used to fit the projection.
        seed: Seed of the fitting sample (and of UMAP).
        chunk_size: Rows converted to float32 at a time while applying it.

    Returns:
        The projection; ``method`` says which one was actually used.

    Raises:
        ValueError: For an unknown method or a matrix that is not two-dimensional.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown projection method {method!r}; use one of {', '.join(METHODS)}.")
    if matrix.ndim != 2:
        raise ValueError(f"Expected a (rows, dim) matrix, got shape {matrix.shape}.")
    # UMAP needs more points than its 15 neighbours (its spectral start fails with a
    # TypeError on 3 points); below that a PCA layout is the honest picture anyway.
    if method == "umap" and umap_available() and matrix.shape[0] > UMAP_MIN_ROWS:
        return Projection(_umap(matrix, sample_size, seed, chunk_size), "umap")
    model = fit_pca(matrix, 2, sample_size, seed)
    return Projection(transform(matrix, model, chunk_size), "pca",
                      [round(float(r), 6) for r in model.explained_variance_ratio])
