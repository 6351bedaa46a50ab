"""Query strategies: pure functions from probabilities and embeddings to scores and picks.

Layered the way modAL is, with one return type per layer:

1. a probability matrix ``proba`` of shape ``(n_items, n_classes)`` (rows sum to 1);
2. a per-item score, a float array of shape ``(n_items,)`` where **higher means ask first**;
3. a pick of ``n`` pool positions (an ``int64`` array, best first).

Conventions shared by every function here:

* Items are addressed by their position in the pool (the row of the embedding matrix).
* A score of ``-inf`` (or NaN) means "not eligible": such items are never picked. Labelled
  items get ``-inf`` in :func:`rank_pool`.
* Randomness comes from an explicit ``rng`` (a :class:`numpy.random.Generator`, an ``int``
  seed or ``None``), so a round can be replayed.
* Embeddings may be a float16 matrix memory-mapped from disk (up to 1,000,000 x 1280). Only
  the rows a function needs (a sample, the candidates, a chunk) are ever copied, and only to
  float32; the whole pool is never converted to float64.

No database, no Flask, no TensorFlow: the retrain round (``labeler.training``) calls
:func:`rank_pool` and stores the result. The clustering behind ``typical`` and
``margin_diverse`` is in :mod:`labeler.learning.clustering`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import entr

from .clustering import kmeans, rows_float32, typicality_scores, typiclust
from .rng import RandomLike

#: Name -> one-line help text. The UI and the config documentation list these.
STRATEGIES: dict[str, str] = {
    "auto": "Cold start ('typical') until every class has a few labels, then 'margin_diverse'.",
    "random": "Uniformly random order; the baseline every other strategy must beat.",
    "least_confident": "Images whose most likely class has the lowest probability.",
    "margin": "Images whose two most likely classes are closest in probability.",
    "entropy": "Images whose predicted class distribution has the highest entropy.",
    "typical": "Cold start: the most typical image of each not-yet-labelled k-means cluster.",
    "margin_diverse": "The most uncertain image (by margin) of each cluster of uncertain images.",
}

#: ``auto`` keeps cold-starting while there are fewer labels than this many per class.
COLD_START_LABELS_PER_CLASS = 2



@dataclass(frozen=True)
class Picks:
    """What a strategy chose, and how it scored every item.

    Attributes:
        indices: Pool positions to ask about next, best first (``int64``).
        scores: One float64 score per pool item, higher = ask sooner; ``-inf`` for labelled
            items. For the batch strategies (``typical``, ``margin_diverse``) the batch is a
            set-level choice, so ``indices`` is not simply the top of ``scores``: serve
            ``indices`` first, then the rest by score (see :meth:`queue_order`).
        strategy: The strategy that produced them (``auto`` resolved to a concrete name).
    """

    indices: np.ndarray
    scores: np.ndarray
    strategy: str

    def queue_order(self) -> np.ndarray:
        """Return every eligible pool position: the picks first, then the rest by score."""
        rest = np.ones(len(self.scores), dtype=bool)
        rest[self.indices] = False
        rest &= self.scores > -np.inf
        rest_idx = np.flatnonzero(rest)
        order = rest_idx[np.argsort(-self.scores[rest_idx], kind="stable")]
        return np.concatenate([self.indices, order]).astype(np.int64)


# --- layer 1 -> 2: probabilities to per-item scores ------------------------------------------


def _as_float(proba: np.ndarray) -> np.ndarray:
    proba = np.asarray(proba)
    if proba.ndim != 2:
        raise ValueError(f"proba must be 2-D (n_items, n_classes); got shape {proba.shape}.")
    # float16 has too little precision to tell near-ties apart; anything else stays as given.
    return proba if proba.dtype in (np.float32, np.float64) else proba.astype(np.float64)


def least_confident_scores(proba: np.ndarray) -> np.ndarray:
    """Score ``1 - max_k p_k``: how unsure the model is of its best guess.

    Args:
        proba: Class probabilities, shape ``(n_items, n_classes)``.

    Returns:
        Scores of shape ``(n_items,)``, higher = more uncertain.
    """
    return (1.0 - _as_float(proba).max(axis=1)).astype(np.float64)


def margin_scores(proba: np.ndarray) -> np.ndarray:
    """Score ``1 - (p_first - p_second)``: 1 for a tie between the top two classes, 0 if sure.

    With a single class column the runner-up probability is taken as 0.

    Args:
        proba: Class probabilities, shape ``(n_items, n_classes)``.

    Returns:
        Scores of shape ``(n_items,)``, higher = more uncertain.
    """
    proba = _as_float(proba)
    if proba.shape[1] < 2:
        return (1.0 - proba[:, 0]).astype(np.float64)
    # A partial sort of each row finds the top two in O(n_classes), unlike a full sort.
    top_two = np.partition(proba, -2, axis=1)[:, -2:]
    return (1.0 - (top_two[:, 1] - top_two[:, 0])).astype(np.float64)


def entropy_scores(proba: np.ndarray) -> np.ndarray:
    """Score the Shannon entropy (natural log) of each row; ``0 log 0`` counts as 0.

    Args:
        proba: Class probabilities, shape ``(n_items, n_classes)``.

    Returns:
        Scores of shape ``(n_items,)``, higher = more uncertain.
    """
    return entr(_as_float(proba)).sum(axis=1).astype(np.float64)


def random_scores(n: int, rng: RandomLike = None) -> np.ndarray:
    """Score ``n`` items uniformly at random in ``[0, 1)``.

    Args:
        n: Number of items.
        rng: Generator or seed.

    Returns:
        Scores of shape ``(n,)``.
    """
    return np.random.default_rng(rng).random(n)


# --- layer 2 -> 3: scores to picks -------------------------------------------------------------


def select_top(scores: np.ndarray, n: int) -> np.ndarray:
    """Pick the ``n`` highest-scoring items, best first.

    Ties are broken by the lower pool position, so the result depends only on the scores.
    Items scoring ``-inf`` or NaN are never picked; fewer than ``n`` come back if fewer are
    eligible. Runs in O(n_items) (a partition, not a full sort).

    Args:
        scores: Per-item scores, shape ``(n_items,)``.
        n: How many to pick.

    Returns:
        Pool positions, ``int64``, shape ``(min(n, n_eligible),)``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    keys = np.where(np.isnan(scores), -np.inf, scores)
    n_eligible = int(np.count_nonzero(keys > -np.inf))
    n = min(int(n), n_eligible)
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    # The n-th largest value is the cut-off. Everything above it is in; among the items equal
    # to it, the lowest positions fill the remaining places. argpartition alone would choose
    # among those equals arbitrarily.
    threshold = keys[np.argpartition(-keys, n - 1)[n - 1]]
    above = np.flatnonzero(keys > threshold)
    at = np.flatnonzero(keys == threshold)[: n - len(above)]
    chosen = np.concatenate([above, at])
    # lexsort sorts by the last key first: score descending, then position ascending.
    return chosen[np.lexsort((chosen, -keys[chosen]))].astype(np.int64)

# --- diverse batch ---------------------------------------------------------------------------


def diverse_uncertain_picks(
    scores: np.ndarray,
    embeddings: np.ndarray,
    n: int,
    candidate_factor: int = 10,
    rng: RandomLike = None,
) -> np.ndarray:
    """Pick ``n`` uncertain items that are not near-duplicates of each other.

    Takes the ``n * candidate_factor`` highest-scoring items, clusters their embeddings into
    ``n`` groups with k-means, and picks the highest-scoring item of each group (as in
    Zhdanov's diverse mini-batch active learning). Only the candidates' rows are read.

    Args:
        scores: Per-item scores, higher = more uncertain; ``-inf`` = not eligible.
        embeddings: Pool embeddings, shape ``(n_items, dim)``.
        n: Batch size.
        candidate_factor: How many candidates per pick to cluster; 1 means plain top-n.
        rng: Generator or seed.

    Returns:
        Pool positions, ``int64``, at most ``n``, highest score first.
    """
    candidates = select_top(scores, n * max(1, candidate_factor))
    if len(candidates) <= n or n <= 1:
        return candidates[: max(n, 0)]
    X = rows_float32(embeddings, candidates)
    cluster_of, _ = kmeans(X, n, np.random.default_rng(rng))
    # candidates are best first, so the first member seen of each cluster is its best.
    _, first = np.unique(cluster_of, return_index=True)
    picked = np.zeros(len(candidates), dtype=bool)
    picked[first] = True
    # Fewer distinct clusters than n (duplicate rows): fill up with the next best candidates.
    picked[np.flatnonzero(~picked)[: n - int(picked.sum())]] = True
    return candidates[picked]

# --- policy and entry point ------------------------------------------------------------------


def choose_strategy(n_labels: int, n_classes_labelled: int, n_classes: int,
                    labels_per_class: float = COLD_START_LABELS_PER_CLASS) -> str:
    """Decide what ``auto`` means now: ``"typical"`` (cold start) or ``"margin_diverse"``.

    Cold start while fewer than two classes have labels (no classifier can be trained) or
    while there are fewer than ``COLD_START_LABELS_PER_CLASS`` labels per class. With so few
    labels the model's uncertainty is noise, and on Fashion-MNIST embeddings uncertainty
    sampling lost to random at small budgets while typical-first-then-margin won at every
    budget. After that, margin with diversity: margin was the best uncertainty measure, and
    clustering the candidates stops a batch from being near-duplicates.

    Args:
        n_labels: Labelled images in the project.
        n_classes_labelled: Classes with at least one label.
        n_classes: Classes defined in the project (labelled or not).
        labels_per_class: Labels per class below which ``auto`` still cold-starts.

    Returns:
        A key of :data:`STRATEGIES`.
    """
    n_classes = max(n_classes, n_classes_labelled, 2)
    if n_classes_labelled < 2 or n_labels < labels_per_class * n_classes:
        return "typical"
    return "margin_diverse"


_PROBA_SCORES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "least_confident": least_confident_scores,
    "margin": margin_scores,
    "entropy": entropy_scores,
}


def rank_pool(
    strategy: str,
    *,
    n: int,
    labelled_mask: np.ndarray,
    proba: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    n_classes: int | None = None,
    rng: RandomLike = None,
) -> Picks:
    """Score every pool item and pick the next ``n`` with the named strategy.

    Args:
        strategy: A key of :data:`STRATEGIES`.
        n: Batch size.
        labelled_mask: Boolean, shape ``(n_items,)``; True where the item has a label.
        proba: Class probabilities for every pool item, or None when there is no model yet.
            Its columns are the classes the model knows, i.e. the classes with labels.
        embeddings: Pool embeddings, shape ``(n_items, dim)``; needed by ``typical``,
            ``margin_diverse`` and ``auto``.
        n_classes: Classes defined in the project, for ``auto``; defaults to the
            columns of ``proba``.
        rng: Generator or seed.

    Returns:
        The picks, every item's score (``-inf`` for labelled items) and the strategy used.

    Raises:
        ValueError: Unknown strategy, or a strategy whose inputs were not given.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")
    labelled_mask = np.asarray(labelled_mask, dtype=bool)
    _check_lengths(labelled_mask, proba, embeddings)
    rng = np.random.default_rng(rng)
    if strategy == "auto":
        strategy = _resolve_auto(labelled_mask, proba, embeddings, n_classes)
    if strategy in ("typical", "margin_diverse") and embeddings is None:
        raise ValueError(f"Strategy {strategy!r} needs the embeddings; compute them first.")
    if strategy == "typical":
        picks, centers = typiclust(embeddings, n, rng, np.flatnonzero(labelled_mask))
        scores = typicality_scores(embeddings, centers)
    elif strategy == "random":
        scores = random_scores(len(labelled_mask), rng)
    else:
        if proba is None:
            raise ValueError(
                f"Strategy {strategy!r} needs a trained model; use 'typical' or 'auto' "
                "until at least two classes have labels."
            )
        scorer = _PROBA_SCORES.get(strategy, margin_scores)  # margin_diverse ranks by margin
        scores = scorer(proba)
    scores[labelled_mask] = -np.inf
    if strategy == "margin_diverse":
        picks = diverse_uncertain_picks(scores, embeddings, n, rng=rng)
    elif strategy != "typical":
        picks = select_top(scores, n)
    return Picks(indices=picks, scores=scores, strategy=strategy)


def _resolve_auto(
    labelled_mask: np.ndarray,
    proba: np.ndarray | None,
    embeddings: np.ndarray | None,
    n_classes: int | None,
) -> str:
    n_known = 0 if proba is None else proba.shape[1]
    choice = choose_strategy(int(labelled_mask.sum()), n_known, n_classes or n_known)
    if embeddings is None:  # without embeddings neither clustering strategy can run
        return "random" if proba is None else "margin"
    return choice


def _check_lengths(
    labelled_mask: np.ndarray, proba: np.ndarray | None, embeddings: np.ndarray | None
) -> None:
    for name, array in (("proba", proba), ("embeddings", embeddings)):
        if array is not None and array.shape[0] != len(labelled_mask):
            raise ValueError(
                f"{name} has {array.shape[0]} rows but labelled_mask has {len(labelled_mask)}; "
                "pass one row per pool item, in pool order."
            )
