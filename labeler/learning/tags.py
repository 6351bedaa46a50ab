"""Multi-label (tag) rounds: fit the heads, cross-validate once, choose thresholds, measure.

:func:`fit_tag_round` is the multi-label twin of :func:`labeler.learning.round_fit.fit_round`:
it fits :class:`~labeler.learning.tag_heads.TagHeads` on every labelled image, gets every
label's out-of-fold probabilities from one k-fold pass (at most :data:`MAX_FOLDS` folds, so a
round costs at most ``MAX_FOLDS + 1`` fits), chooses each tag's threshold where F1 is best on
them and measures the round there (:func:`~labeler.learning.tag_metrics.tag_metrics`).
``labeler simulate`` replays the same function, so its curves are the rounds'.

Unlike the single-label head, no temperature is fitted: a tag's decision is its threshold,
chosen on held-out probabilities, and the one-vs-rest logistic probabilities are already
trained on the log-loss of each tag.

The rest of the multi-label learning layer is re-exported here: the heads and their arrays,
set confidence, thresholds and metrics, so callers import one module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import KFold

from .heads import pool_statistics
from .rng import RandomLike
from .tag_heads import (
    DEFAULT_THRESHOLD,
    TAG_LOGISTIC,
    TagHeads,
    check_tag_matrix,
    set_confidence,
    tag_arrays,
    tag_heads_from_arrays,
)
from .tag_metrics import best_f1_threshold, best_f1_thresholds, tag_metrics

__all__ = [
    "DEFAULT_THRESHOLD",
    "MAX_FOLDS",
    "TAG_LOGISTIC",
    "FittedTagRound",
    "OutOfFoldTags",
    "TagHeads",
    "best_f1_threshold",
    "best_f1_thresholds",
    "check_tag_matrix",
    "fit_tag_round",
    "set_confidence",
    "tag_arrays",
    "tag_heads_from_arrays",
    "tag_metrics",
]

#: Folds of the out-of-fold pass (fewer with few labels: at least two labels per fold).
MAX_FOLDS = 5


@dataclass(frozen=True)
class OutOfFoldTags:
    """Every labelled image's tag probabilities from heads that did not see it.

    Attributes:
        proba: Out-of-fold probabilities, shape ``(n_labels, n_tags)``.
        positions: Pool position of each row.
        labels: The given 0/1 tags of each row.
    """

    proba: np.ndarray
    positions: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class FittedTagRound:
    """What :func:`fit_tag_round` returns.

    Attributes:
        head: The heads fitted on every label, ``thresholds_`` set to ``thresholds``.
        thresholds: Decision threshold per tag (F1-best out of fold; 0.5 without a pass).
        oof: The out-of-fold pass, or None with fewer than four labels.
        metrics: :func:`~labeler.learning.tag_metrics.tag_metrics` of the out-of-fold pass
            (figures None without one), JSON-ready: what a round records.
    """

    head: TagHeads
    thresholds: np.ndarray
    oof: OutOfFoldTags | None
    metrics: dict[str, Any]


def _labelled_rows(embeddings: Any, Y: np.ndarray, labelled: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_rows = embeddings.shape[0]
    Y = check_tag_matrix(Y, n_rows)
    positions = (np.arange(n_rows) if labelled is None
                 else np.flatnonzero(np.asarray(labelled, dtype=bool)))
    if labelled is not None and len(labelled) != n_rows:
        raise ValueError(f"labelled has {len(labelled)} entries for {n_rows} embeddings; pass "
                         "one per pool item.")
    return np.asarray(embeddings[positions], dtype=np.float32), Y[positions], positions


def out_of_fold_tag_proba(make_head: Any, X: np.ndarray, Y: np.ndarray,
                          rng: RandomLike = 0) -> np.ndarray | None:
    """Each row's tag probabilities from heads fitted on the other folds, or None (< 4 rows).

    Folds are plain (shuffled) k-fold: a stratified split of many tags at once does not
    exist in scikit-learn, and a tag that one training fold lacks gets a constant head.
    """
    folds = min(MAX_FOLDS, len(X) // 2)
    if folds < 2:
        return None
    seed = int(np.random.default_rng(rng).integers(2**31 - 1))
    proba = np.empty(Y.shape, dtype=np.float64)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(X):
        proba[test] = make_head().fit(X[train], Y[train]).predict_proba(X[test])
    return proba


def fit_tag_round(
    embeddings: Any,
    Y: np.ndarray,
    labelled: np.ndarray | None = None,
    *,
    tags: Sequence[str] | None = None,
    C: float = 0.1,
    standardisation: tuple[np.ndarray, np.ndarray] | None = None,
    rng: RandomLike = 0,
) -> FittedTagRound:
    """Fit the tag heads on all labels, cross-validate them once and choose thresholds.

    Args:
        embeddings: The pool, shape ``(n_items, dim)`` (a float16 memory-map is fine).
        Y: 0/1 tags, shape ``(n_items, n_tags)``; rows of unlabelled items are ignored.
        labelled: Boolean mask of the labelled items (an explicit empty tag set is
            labelled); None means every row is.
        tags: What each column is, one per column: the metrics are keyed by ``str(tag)``
            (default ``"0"``, ``"1"``, ...) and the head keeps them as ``tags_``.
        C: Inverse regularisation strength of each head.
        standardisation: The pool's ``(mean, scale)`` if already computed
            (:func:`~labeler.learning.heads.pool_statistics`); computed here otherwise.
        rng: Seed of the fold assignment.

    Returns:
        The fitted round.

    Raises:
        NotEnoughLabels: No labelled images.
        ValueError: ``Y`` is not a 0/1 matrix with one row per item.
    """
    X, Y_labelled, positions = _labelled_rows(embeddings, Y, labelled)
    mean, scale = standardisation if standardisation is not None else pool_statistics(embeddings)

    def make_head() -> TagHeads:
        return TagHeads(C=C, pool_mean=mean, pool_scale=scale)

    head = make_head().fit(X, Y_labelled, tags)
    proba = out_of_fold_tag_proba(make_head, X, Y_labelled, rng)
    if proba is None:
        thresholds = np.full(Y_labelled.shape[1], DEFAULT_THRESHOLD)
        metrics = tag_metrics(Y_labelled[:0], np.empty((0, Y_labelled.shape[1])), thresholds,
                              tags)
        metrics["n_labels"] = len(Y_labelled)
        metrics["cardinality"] = float(Y_labelled.sum(axis=1).mean())
        return FittedTagRound(head, thresholds, None, metrics)
    thresholds = best_f1_thresholds(Y_labelled, proba)
    head.thresholds_ = thresholds
    return FittedTagRound(head, thresholds, OutOfFoldTags(proba, positions, Y_labelled),
                          tag_metrics(Y_labelled, proba, thresholds, tags))
