"""Coverage cold starts: choose the first labels so that they cover the pool.

Three query strategies from the low-budget active-learning literature, each pure numpy and
scikit-learn, layered like :mod:`labeler.learning.strategies` (embeddings -> per-item score
-> pick n):

* :func:`probcover_picks` — ProbCover (Yehuda et al., 2022): balls of radius ``delta``
  around labelled points should cover the pool; greedily pick the point whose ball covers
  most uncovered points. ``delta`` is the largest radius at which 95 % of balls are pure
  under a k-means clustering into as many clusters as there are classes.
* :func:`maxherding_picks` — MaxHerding (Bae et al., 2025): greedily maximise the
  generalised coverage ``sum_x max_{s in labelled} k(x, s)`` with a Gaussian kernel.
* :func:`typiclust_picks` — TypiClust (Hacohen et al., 2022) as published: k-means into
  ``n_labelled + n`` clusters of L2-normalised features, the largest uncovered clusters of
  at least five points first, the most typical point of each (the ``typical`` of
  :mod:`labeler.learning.strategies` is a variant on unnormalised features with a round-robin fill).

All three work in the space of the graph of :mod:`labeler.learning.pool_graph` (a 64-d PCA
subspace, rows L2-normalised) on a uniform sample of at most 10,000 pool rows, so their
cost does not grow with the pool. Scores: sampled rows get their coverage gain at the end of
the greedy pass; rows outside the sample a score below every sampled one, so the queue
serves them last.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from .pool_graph import nearest_nodes
from .rng import RandomLike

_SPACE_DIMS = 64
_PCA_ROWS = 2_000
_MAX_SAMPLE = 10_000
# MaxHerding's candidate x sample kernel matrix: 3,000 x 10,000 float32 is 120 MB.
_MAX_CANDIDATES = 3_000
_BLOCK = 1_024
# ProbCover: balls must be this pure (the paper's alpha).
_PURITY = 0.95
# TypiClust: typicality from this many neighbours; clusters smaller than this are skipped.
_TYPICALITY_NEIGHBOURS = 20
_MIN_CLUSTER_SIZE = 5
_MAX_CLUSTERS = 500


class _Space:
    """A uniform sample of the pool in normalised PCA coordinates, plus the labelled rows."""

    def __init__(self, embeddings: np.ndarray, labelled: np.ndarray,
                 rng: np.random.Generator) -> None:
        n_items = embeddings.shape[0]
        sample = np.arange(n_items) if n_items <= _MAX_SAMPLE else np.sort(
            rng.choice(n_items, _MAX_SAMPLE, replace=False))
        rows = np.asarray(embeddings[sample], dtype=np.float32)
        fit_rows = rows[rng.permutation(len(rows))[:_PCA_ROWS]]
        pca = PCA(min(_SPACE_DIMS, *fit_rows.shape), svd_solver="randomized",
                  random_state=int(rng.integers(2**31 - 1)))
        with np.errstate(divide="ignore", invalid="ignore"):
            pca.fit(fit_rows)
        self.pca = pca
        self.sample = sample
        self.Z = self.project(rows)
        self.is_labelled = np.isin(sample, labelled)
        outside = np.setdiff1d(labelled, sample)
        # Labelled rows outside the sample still cover their neighbourhood.
        self.Z_labelled = np.concatenate([
            self.Z[self.is_labelled],
            self.project(np.asarray(embeddings[outside], dtype=np.float32)),
        ]) if len(labelled) else np.empty((0, self.Z.shape[1]), np.float32)

    def project(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.empty((0, self.pca.n_components_), np.float32)
        Z = self.pca.transform(rows).astype(np.float32)
        return Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)

    def pool_scores(self, n_items: int, sample_scores: np.ndarray) -> np.ndarray:
        """Spread per-sample scores to the pool; unsampled rows rank below every sampled one."""
        finite = sample_scores[np.isfinite(sample_scores)]
        floor = (finite.min() if len(finite) else 0.0) - 1.0
        scores = np.full(n_items, floor, dtype=np.float64)
        scores[self.sample] = sample_scores
        return scores


def _as_labelled(already_labelled_idx: np.ndarray | None) -> np.ndarray:
    if already_labelled_idx is None:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.asarray(already_labelled_idx, dtype=np.int64))


# --- ProbCover ---------------------------------------------------------------------------------


def purity_radius(Z: np.ndarray, n_classes: int, rng: RandomLike = 0,
                  purity: float = _PURITY) -> float:
    """The largest ball radius at which a ``purity`` share of balls hold one k-means cluster.

    A ball around ``x`` is pure while it reaches no point of another cluster, i.e. while its
    radius is below the distance from ``x`` to the nearest point of another cluster; so the
    radius is the ``1 - purity`` quantile of those distances (no search over radii).

    Args:
        Z: Points, rows of unit length.
        n_classes: Clusters of the k-means pseudo-labelling (the number of classes).
        rng: Seed of k-means.
        purity: Share of pure balls wanted.

    Returns:
        The radius (Euclidean, between unit vectors).
    """
    n_clusters = max(2, min(n_classes, len(Z) - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cluster = KMeans(n_clusters, n_init=3, random_state=int(
            np.random.default_rng(rng).integers(2**31 - 1))).fit_predict(Z.astype(np.float64))
    nearest_other = np.empty(len(Z), dtype=np.float64)
    for start in range(0, len(Z), _BLOCK):
        S = Z[start:start + _BLOCK] @ Z.T
        S[cluster[start:start + _BLOCK, None] == cluster[None, :]] = -np.inf
        nearest_other[start:start + len(S)] = S.max(axis=1)
    distance = np.sqrt(np.maximum(2.0 - 2.0 * nearest_other, 0.0))
    return float(np.quantile(distance, 1.0 - purity))


def _ball_members(Zq: np.ndarray, Z: np.ndarray, radius: float) -> list[np.ndarray]:
    """For each row of ``Zq``, the rows of ``Z`` within ``radius`` (cosine form)."""
    min_sim = 1.0 - radius * radius / 2.0
    members = []
    for start in range(0, len(Zq), _BLOCK):
        S = Zq[start:start + _BLOCK] @ Z.T
        members.extend(np.flatnonzero(row >= min_sim) for row in S)
    return members


def probcover_picks(
    embeddings: np.ndarray,
    n: int,
    n_classes: int,
    rng: RandomLike = None,
    already_labelled_idx: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """ProbCover: greedy maximum coverage with pure balls.

    Args:
        embeddings: Pool embeddings, shape ``(n_items, dim)``.
        n: How many to pick.
        n_classes: Classes in the project (sets the purity clustering).
        rng: Generator or seed.
        already_labelled_idx: Pool positions with labels; their balls count as covered.

    Returns:
        ``(picks, scores)``: pool positions (``int64``, best first) and a per-item score
        (the uncovered points each ball would still cover; ``-inf`` for labelled items).
        Once the pool is covered, the rest of the batch is the highest-degree points.
    """
    rng = np.random.default_rng(rng)
    labelled = _as_labelled(already_labelled_idx)
    space = _Space(embeddings, labelled, rng)
    radius = purity_radius(space.Z, n_classes, rng)
    balls = _ball_members(space.Z, space.Z, radius)
    covered = np.zeros(len(space.Z), dtype=bool)
    for members in _ball_members(space.Z_labelled, space.Z, radius):
        covered[members] = True
    # The ball relation is symmetric, so "points covering j" are j's own ball members.
    degree = np.array([np.count_nonzero(~covered[m]) for m in balls], dtype=np.float64)
    full_degree = np.array([len(m) for m in balls], dtype=np.float64)
    eligible = ~space.is_labelled
    picks: list[int] = []
    for _ in range(min(n, int(eligible.sum()))):
        gain = np.where(eligible, degree, -np.inf)
        j = int(np.argmax(gain))
        if gain[j] <= 0:  # all covered: prefer dense points, as a fresh ball would
            j = int(np.argmax(np.where(eligible, full_degree, -np.inf)))
        picks.append(j)
        eligible[j] = False
        newly = balls[j][~covered[balls[j]]]
        covered[newly] = True
        for point in newly:  # each newly covered point no longer counts for its neighbours
            degree[balls[point]] -= 1
    scores = np.where(space.is_labelled, -np.inf, degree)
    return space.sample[np.asarray(picks, dtype=np.int64)], space.pool_scores(
        embeddings.shape[0], scores)


# --- MaxHerding --------------------------------------------------------------------------------


def kernel_bandwidth(Z: np.ndarray, k: int = 10) -> float:
    """A Gaussian bandwidth from the data: the median distance to the ``k``-th neighbour."""
    probe = Z[: min(len(Z), 2_000)]
    _, sims = nearest_nodes(probe, Z[: min(len(Z), _MAX_SAMPLE)], k + 1)
    return float(np.median(np.sqrt(np.maximum(2.0 - 2.0 * sims[:, -1], 0.0)))) or 1.0


def _gaussian(Za: np.ndarray, Zb: np.ndarray, bandwidth: float) -> np.ndarray:
    """``exp(-|a - b|^2 / (2 sigma^2))`` for unit vectors, as float32."""
    K = Za @ Zb.T  # cosine similarity
    np.subtract(K, 1.0, out=K)
    np.multiply(K, 1.0 / (bandwidth * bandwidth), out=K)  # -|a-b|^2/2 = cos - 1
    return np.exp(K, out=K)


def maxherding_picks(
    embeddings: np.ndarray,
    n: int,
    rng: RandomLike = None,
    already_labelled_idx: np.ndarray | None = None,
    bandwidth_scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """MaxHerding: greedily maximise the kernel coverage of the pool by the labelled set.

    Args:
        embeddings: Pool embeddings, shape ``(n_items, dim)``.
        n: How many to pick.
        rng: Generator or seed.
        already_labelled_idx: Pool positions with labels.
        bandwidth_scale: Multiplies the data-derived bandwidth (:func:`kernel_bandwidth`).

    Returns:
        ``(picks, scores)``: pool positions (``int64``, best first) and per-item scores
        (coverage gain after the batch; ``-inf`` for labelled items).
    """
    rng = np.random.default_rng(rng)
    labelled = _as_labelled(already_labelled_idx)
    space = _Space(embeddings, labelled, rng)
    bandwidth = kernel_bandwidth(space.Z) * bandwidth_scale
    unlabelled = np.flatnonzero(~space.is_labelled)
    candidates = unlabelled if len(unlabelled) <= _MAX_CANDIDATES else np.sort(
        rng.choice(unlabelled, _MAX_CANDIDATES, replace=False))
    K = _gaussian(space.Z[candidates], space.Z, bandwidth)  # (candidates, sample)
    coverage = np.zeros(len(space.Z), dtype=np.float32)
    for start in range(0, len(space.Z_labelled), _BLOCK):
        block = _gaussian(space.Z_labelled[start:start + _BLOCK], space.Z, bandwidth)
        np.maximum(coverage, block.max(axis=0), out=coverage)
    open_ = np.ones(len(candidates), dtype=bool)
    picks: list[int] = []
    gain = np.zeros(len(candidates))
    for _ in range(min(n, len(candidates))):
        gain = np.maximum(K - coverage, 0.0).sum(axis=1, dtype=np.float64)
        gain[~open_] = -np.inf
        j = int(np.argmax(gain))
        picks.append(int(candidates[j]))
        open_[j] = False
        np.maximum(coverage, K[j], out=coverage)
    gain = np.maximum(K - coverage, 0.0).sum(axis=1, dtype=np.float64)
    sample_scores = np.full(len(space.Z), -np.inf)
    sample_scores[candidates] = gain
    others = ~space.is_labelled
    others[candidates] = False
    sample_scores[others] = gain.min() if len(gain) else 0.0
    return space.sample[np.asarray(picks, dtype=np.int64)], space.pool_scores(
        embeddings.shape[0], sample_scores)


# --- TypiClust ---------------------------------------------------------------------------------


def _typicality(Z: np.ndarray) -> np.ndarray:
    """Inverse mean distance to the ``min(20, size // 2)`` nearest points in ``Z``."""
    k = min(_TYPICALITY_NEIGHBOURS, len(Z) // 2)
    if k < 1:
        return np.ones(len(Z))
    _, sims = nearest_nodes(Z, Z, k, exclude_self=True)
    return 1.0 / (np.sqrt(np.maximum(2.0 - 2.0 * sims, 0.0)).mean(axis=1) + 1e-12)


def typiclust_picks(
    embeddings: np.ndarray,
    n: int,
    rng: RandomLike = None,
    already_labelled_idx: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """TypiClust as published: the most typical point of each large uncovered cluster.

    Args:
        embeddings: Pool embeddings, shape ``(n_items, dim)``.
        n: How many to pick.
        rng: Generator or seed.
        already_labelled_idx: Pool positions with labels.

    Returns:
        ``(picks, scores)``: pool positions (``int64``, best first) and per-item scores
        (typicality within the item's cluster; ``-inf`` for labelled items).
    """
    rng = np.random.default_rng(rng)
    labelled = _as_labelled(already_labelled_idx)
    space = _Space(embeddings, labelled, rng)
    n_clusters = max(2, min(len(labelled) + n, _MAX_CLUSTERS, len(space.Z) - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KMeans(n_clusters, n_init=3, random_state=int(rng.integers(2**31 - 1)))
        cluster = model.fit_predict(space.Z.astype(np.float64))
    covered = np.zeros(n_clusters, dtype=np.int64)
    if len(space.Z_labelled):
        np.add.at(covered, model.predict(space.Z_labelled.astype(np.float64)), 1)
    sizes = np.bincount(cluster, minlength=n_clusters)
    typicality = np.full(len(space.Z), -np.inf)
    for c in range(n_clusters):
        members = np.flatnonzero(cluster == c)
        if len(members):
            typicality[members] = _typicality(space.Z[members])
    typicality[space.is_labelled] = -np.inf
    picks: list[int] = []
    # Uncovered before covered, large before small; tiny clusters (outliers) last.
    order = np.lexsort((-sizes, covered, sizes < _MIN_CLUSTER_SIZE))
    while len(picks) < n:
        before = len(picks)
        for c in order:
            members = np.flatnonzero((cluster == c) & np.isfinite(typicality))
            if len(members) and len(picks) < n:
                best = members[np.argmax(typicality[members])]
                picks.append(int(best))
                typicality[best] = -np.inf
        if len(picks) == before:
            break
    scores = np.full(len(space.Z), -np.inf)
    for c in range(n_clusters):
        members = np.flatnonzero(cluster == c)
        if len(members):
            scores[members] = _typicality(space.Z[members])
    scores[space.is_labelled] = -np.inf
    return space.sample[np.asarray(picks, dtype=np.int64)], space.pool_scores(
        embeddings.shape[0], scores)
