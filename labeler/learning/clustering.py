"""Clustering for the query strategies: k-means, TypiClust's typicality, cold-start picks.

Pure numpy and scikit-learn, like :mod:`labeler.learning.strategies`, which calls these.
Embeddings may be a float16 memory map of the whole pool: only the rows a function needs
(a sample, the candidates, a chunk) are copied, and only to float32.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from .rng import RandomLike, seed_of

# TypiClust's defaults: density from the 20 nearest neighbours, at most 500 clusters.
_TYPICALITY_NEIGHBOURS = 20
_MAX_CLUSTERS = 500
# Cold start clusters in a PCA subspace of this many dimensions, fitted on this many rows.
_CLUSTER_DIMS = 64
_PCA_ROWS = 2_000
# k-means and the density estimate run on a uniform sample of the pool: a 10,000-row sample
# finds the same dense regions as 1,000,000 rows at a hundredth of the cost, and the kNN
# density inside one cluster is quadratic in its size, hence the per-cluster cap.
_MAX_SAMPLE = 10_000
_MAX_CLUSTER_MEMBERS = 1_000
# Above this many rows MiniBatchKMeans is several times faster than Lloyd's KMeans.
_MINIBATCH_ABOVE = 5_000
# Rows converted to float32 at once when a pass over the whole pool is needed (~80 MB).
_CHUNK_ROWS = 16_384

def rows_float32(embeddings: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` of ``embeddings`` as float32, read in ascending order."""
    # Reading a memory-map in ascending row order is sequential I/O; scattered order is not.
    order = np.argsort(idx, kind="stable")
    rows = np.empty((len(idx), embeddings.shape[1]), dtype=np.float32)
    rows[order] = np.asarray(embeddings[idx[order]], dtype=np.float32)
    return rows


def kmeans(
    X: np.ndarray, n_clusters: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return (labels, centres) of ``X``, with MiniBatchKMeans for large inputs."""
    # float64, because for float32 input scikit-learn's distances upcast chunk by chunk on
    # every k-means++ step, which made clustering 2-3x slower than with a float64 copy.
    X = np.asarray(X, dtype=np.float64)
    if len(X) > _MINIBATCH_ABOVE:
        model = MiniBatchKMeans(n_clusters, n_init=3, batch_size=2048, random_state=seed_of(rng))
    else:
        model = KMeans(n_clusters, n_init=3, random_state=seed_of(rng))
    with warnings.catch_warnings():
        # Duplicate points can leave fewer distinct clusters than asked; callers fill the gap.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    return model.labels_, model.cluster_centers_


def _sq_norms(X: np.ndarray) -> np.ndarray:
    # einsum avoids the temporary X * X, a copy of the whole chunk.
    return np.einsum("ij,ij->i", X, X)


def _nearest_center(X: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (label, distance) of the nearest centre for each row of ``X``."""
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2, one matrix product instead of n_items x k vectors.
    d2 = _sq_norms(X)[:, None] - 2.0 * X @ centers.T + _sq_norms(centers)
    labels = d2.argmin(axis=1)
    return labels, np.sqrt(np.maximum(d2[np.arange(len(X)), labels], 0.0))


def _density(X: np.ndarray) -> np.ndarray:
    """TypiClust typicality: inverse mean distance to the k nearest neighbours in ``X``."""
    k = min(_TYPICALITY_NEIGHBOURS, len(X) - 1)
    if k < 1:
        return np.zeros(len(X))
    # X is one capped cluster in the PCA subspace (<= 1000 x 64), so the full distance
    # matrix is small, and a partition per row beats a tree or a chunked search.
    sq = _sq_norms(X)
    d2 = np.maximum(sq[:, None] - 2.0 * X @ X.T + sq[None, :], 0.0)
    np.fill_diagonal(d2, np.inf)  # a point is not its own neighbour
    nearest = np.partition(d2, k - 1, axis=1)[:, :k]
    return 1.0 / (np.sqrt(nearest).mean(axis=1) + 1e-12)


# --- cold start --------------------------------------------------------------------------------


def typiclust(
    embeddings: np.ndarray, n: int, rng: np.random.Generator, labelled: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """TypiClust on a sample of the pool; return (picks, cluster centres in pool space)."""
    n_items, dim = embeddings.shape
    if n_items < 2:  # PCA and k-means need two rows; a single row is its own centre
        centers = rows_float32(embeddings, np.arange(n_items)) if n_items else np.zeros((1, dim))
        picks = np.setdiff1d(np.arange(n_items), labelled)[: max(n, 0)]
        return picks.astype(np.int64), centers.astype(np.float32)
    sample = np.sort(rng.choice(n_items, size=min(n_items, _MAX_SAMPLE), replace=False))
    X = rows_float32(embeddings, sample)
    # Clustering and kNN density in a PCA subspace: the cluster structure of image
    # embeddings lives in the leading components, and 1280-d distances cost 20x more.
    # The leading directions are well estimated from a few thousand rows; fitting on fewer
    # keeps the SVD, the slowest step, under a second.
    pca_rows = X[rng.permutation(len(X))[:_PCA_ROWS]]
    pca = PCA(min(_CLUSTER_DIMS, *pca_rows.shape), svd_solver="randomized",
              random_state=seed_of(rng))
    with np.errstate(divide="ignore", invalid="ignore"):
        pca.fit(pca_rows)  # a constant pool has zero variance; only the ratios (unused) break
    Z = pca.transform(X)
    # One more cluster per wanted pick than there are labels, so n clusters stay uncovered.
    n_clusters = max(1, min(len(labelled) + n, _MAX_CLUSTERS, len(sample)))
    cluster_of, centers = kmeans(Z, n_clusters, rng)
    covered = np.zeros(n_clusters, dtype=np.int64)
    if len(labelled):
        Z_labelled = pca.transform(rows_float32(embeddings, labelled))
        np.add.at(covered, _nearest_center(Z_labelled, centers)[0], 1)
    sizes = np.bincount(cluster_of, minlength=n_clusters)
    is_labelled = np.isin(sample, labelled)
    queues = []
    # Uncovered clusters first, then large before small: TypiClust's order of preference.
    for c in np.lexsort((-sizes, covered)):
        members = np.flatnonzero(cluster_of == c)
        if len(members) > _MAX_CLUSTER_MEMBERS:
            members = np.sort(rng.choice(members, _MAX_CLUSTER_MEMBERS, replace=False))
        ranked = members[np.argsort(-_density(Z[members]), kind="stable")]
        queues.append(sample[ranked[~is_labelled[ranked]]])
    return _round_robin(queues, n), pca.inverse_transform(centers).astype(np.float32)


def _round_robin(queues: list[np.ndarray], n: int) -> np.ndarray:
    """Take the head of each queue in turn, then the second of each, ... until ``n``."""
    picks: list[int] = []
    for depth in range(max((len(q) for q in queues), default=0)):
        picks.extend(int(q[depth]) for q in queues if depth < len(q))
        if len(picks) >= n:
            break
    return np.asarray(picks[:n], dtype=np.int64)


def typical_diverse_picks(
    embeddings: np.ndarray,
    n: int,
    rng: RandomLike = None,
    already_labelled_idx: np.ndarray | None = None,
) -> np.ndarray:
    """Cold start without a model: the most typical image of each uncovered region (TypiClust).

    Clusters a uniform sample of the pool with k-means into ``n_labelled + n`` clusters,
    orders the clusters so that those holding no labelled item come first (largest first),
    and picks the most typical unlabelled point of each: the one with the smallest mean
    distance to its nearest neighbours within its cluster. Typical points label whole
    regions at once, which is why this beats uncertainty sampling at small budgets.

    Args:
        embeddings: Pool embeddings, shape ``(n_items, dim)``; float16 memory-maps are fine.
        n: How many to pick.
        rng: Generator or seed.
        already_labelled_idx: Pool positions that already have labels.

    Returns:
        Pool positions, ``int64``, at most ``n``, most preferred first.
    """
    labelled = np.asarray(
        [] if already_labelled_idx is None else already_labelled_idx, dtype=np.int64
    )
    if n <= 0 or embeddings.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    return typiclust(embeddings, n, np.random.default_rng(rng), np.unique(labelled))[0]


def typicality_scores(embeddings: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Score every item by closeness to its nearest cluster centre (negative distance).

    A cheap, whole-pool stand-in for the kNN density: it orders the queue after the
    :func:`typical_diverse_picks` batch. Streams the pool in float32 chunks.

    Args:
        embeddings: Pool embeddings, shape ``(n_items, dim)``.
        centers: Cluster centres, shape ``(n_clusters, dim)``.

    Returns:
        Scores of shape ``(n_items,)``, higher = more typical.
    """
    centers = np.asarray(centers, dtype=np.float32)
    out = np.empty(embeddings.shape[0], dtype=np.float64)
    for start in range(0, embeddings.shape[0], _CHUNK_ROWS):
        chunk = np.asarray(embeddings[start : start + _CHUNK_ROWS], dtype=np.float32)
        out[start : start + len(chunk)] = -_nearest_center(chunk, centers)[1]
    return out
