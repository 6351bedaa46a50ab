"""2-D layouts of an embedding matrix, for the embedding map: PCA and t-SNE. No Flask.

The matrix may be a float16 memory map of a million rows: PCA is fitted on a sample of at
most ``sample_size`` rows (float32, about 100 MB for 20,000 × 1280) and applied to all rows
in chunks, so the whole pool is never converted to float32 or float64 at once.

PCA takes a second even at 100,000 rows, but two principal components mix the classes of
real embeddings. t-SNE (openTSNE) keeps each image beside the images it resembles
(``bench/map_layout.py``: trustworthiness at k=10 on the demo's 3,000 images 0.98 against
PCA's 0.82) and takes seconds to minutes, so the app computes it in a background job and
shows PCA until it is ready.

Why openTSNE rather than umap-learn: ``import umap`` imports TensorFlow whenever it is
installed (its package loads ``ParametricUMAP``), and only :mod:`labeler.embeddings` may;
umap-learn also compiles numba code at first use in every process (23 s here) unless numba
may write a cache. openTSNE ships compiled code and its own Annoy neighbour search; the
neighbour index is built here because openTSNE's automatic choice imports pynndescent (and
so numba) merely to see whether it is installed, so numba is never imported. t-SNE also
scored higher than UMAP on the same data (0.979 against 0.964) and took less time at
10,000 and 100,000 rows.

How a t-SNE layout is made (:func:`layout_2d` with ``method="tsne"``):

1. Rows are reduced to ``TSNE_INPUT_DIMS`` principal components, as above. t-SNE on 50
   components is the usual practice: the neighbours barely change and finding them is
   several times cheaper than in 1,280 dimensions.
2. Up to ``fit_rows`` rows, t-SNE is fitted on all of them. Above, it is fitted on a sample
   of ``fit_rows`` rows and the other rows are placed into that layout by openTSNE's
   ``transform`` (each new point is optimised against the fixed sample).
3. Perplexity shrinks for small sets, so a project with fewer rows than t-SNE's 90
   neighbours still gets a layout; below ``MIN_TSNE_ROWS`` rows, or when t-SNE gives no
   finite layout (e.g. all rows the same), the result is PCA and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

DEFAULT_SAMPLE = 20_000
DEFAULT_CHUNK = 16_384  # rows per float32 chunk: 80 MB at 1280 dimensions
METHODS = ("pca", "tsne")

TSNE_INPUT_DIMS = 50
# Above this many rows t-SNE is fitted on a sample and the rest are placed by transform.
DEFAULT_FIT_ROWS = 100_000
# t-SNE's usual perplexity; smaller sets get (rows - 1) / 3, so each row has the
# 3 * perplexity neighbours its affinities are computed from.
PERPLEXITY = 30.0
# Below this, a 2-D neighbour layout has too few points to show anything PCA does not.
MIN_TSNE_ROWS = 10
# openTSNE finds exact neighbours below this many rows and Annoy's approximate ones above
# (openTSNE's own rule for its "auto" choice).
_EXACT_NEIGHBOURS_BELOW = 1_000
# Rows placed by one openTSNE transform call above fit_rows: bounds its memory.
_TRANSFORM_CHUNK = 50_000


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


def _tsne(points: np.ndarray, fit_rows: int, seed: int, n_jobs: int) -> np.ndarray:
    """openTSNE layout of ``points``; fitted on a sample when there are more than fit_rows."""
    # Imported on use: only the map job needs them.
    from openTSNE import TSNE, affinity, initialization, nearest_neighbors

    n_rows = len(points)
    fitted = sample_rows(n_rows, fit_rows, seed)
    sample = points[fitted]
    perplexity = min(PERPLEXITY, (len(sample) - 1) / 3)
    # Built here rather than by openTSNE's "auto" choice, which imports pynndescent (and so
    # numba) merely to see whether it is installed.
    index_type = (nearest_neighbors.Sklearn if len(sample) < _EXACT_NEIGHBOURS_BELOW
                  else nearest_neighbors.Annoy)
    index = index_type(sample, k=min(len(sample) - 1, int(3 * perplexity)),
                       metric="euclidean", n_jobs=n_jobs, random_state=seed)
    affinities = affinity.PerplexityBasedNN(perplexity=perplexity, n_jobs=n_jobs,
                                            knn_index=index)
    start = initialization.pca(sample, random_state=seed)
    embedding = TSNE(n_jobs=n_jobs, random_state=seed).fit(
        affinities=affinities, initialization=start)
    coords = np.empty((n_rows, 2), dtype=np.float32)
    coords[fitted] = np.asarray(embedding, dtype=np.float32)
    rest = np.setdiff1d(np.arange(n_rows), fitted, assume_unique=True)
    for first in range(0, len(rest), _TRANSFORM_CHUNK):
        rows = rest[first : first + _TRANSFORM_CHUNK]
        coords[rows] = np.asarray(embedding.transform(points[rows]), dtype=np.float32)
    return coords


def _tsne_layout(matrix: np.ndarray, fit_rows: int, seed: int, n_jobs: int,
                 chunk_size: int) -> Projection | None:
    """t-SNE of ``matrix``, or None when there are too few rows or no finite layout."""
    if matrix.shape[0] < MIN_TSNE_ROWS or matrix.shape[1] == 0:
        return None
    dims = min(TSNE_INPUT_DIMS, matrix.shape[1])
    points = transform(matrix, fit_pca(matrix, dims, DEFAULT_SAMPLE, seed), chunk_size)
    if not np.ptp(points, axis=0).max() > 0:  # every row the same: nothing to lay out
        return None
    coords = _tsne(points, fit_rows, seed, n_jobs)
    return Projection(coords, "tsne") if np.isfinite(coords).all() else None


def layout_2d(matrix: np.ndarray, method: str = "pca", sample_size: int = DEFAULT_SAMPLE,
              seed: int = 0, chunk_size: int = DEFAULT_CHUNK, *,
              fit_rows: int = DEFAULT_FIT_ROWS, n_jobs: int = 1) -> Projection:
    """2-D coordinates of every row of ``matrix``.

    Args:
        matrix: (rows, dim) embeddings, e.g. ``VectorStore.matrix()`` (float16 memmap);
            NaN and infinity are read as 0.
        method: ``"pca"`` (a second), or ``"tsne"`` (seconds to minutes; see the module
            docstring), which gives PCA when there are fewer than ``MIN_TSNE_ROWS`` rows or
            no spread.
        sample_size: Most rows used to fit PCA.
        seed: Seed of the samples, of Annoy and of t-SNE's optimisation: the same matrix and
            seed give the same layout.
        chunk_size: Rows converted to float32 at a time while applying PCA.
        fit_rows: Most rows t-SNE is fitted on; the others are placed by ``transform``.
        n_jobs: Threads t-SNE may use.

    Returns:
        The projection; ``method`` says which one was actually used, and
        ``explained_variance`` is PCA's (empty for t-SNE).

    Raises:
        ValueError: For an unknown method, a matrix that is not two-dimensional, or
            ``fit_rows`` below ``MIN_TSNE_ROWS``.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown projection method {method!r}; use one of {', '.join(METHODS)}.")
    if matrix.ndim != 2:
        raise ValueError(f"Expected a (rows, dim) matrix, got shape {matrix.shape}.")
    if fit_rows < MIN_TSNE_ROWS:
        raise ValueError(f"fit_rows must be at least {MIN_TSNE_ROWS}; got {fit_rows}.")
    if method == "tsne":
        layout = _tsne_layout(matrix, fit_rows, seed, n_jobs, chunk_size)
        if layout is not None:
            return layout
    model = fit_pca(matrix, 2, sample_size, seed)
    return Projection(transform(matrix, model, chunk_size), "pca",
                      [round(float(r), 6) for r in model.explained_variance_ratio])
