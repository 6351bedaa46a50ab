"""A semi-supervised head: the logistic head refitted with pseudo-labels from the pool.

:class:`PseudoLabelHead` is a :class:`~labeler.learning.heads.LogisticHead` trained on the
labels plus pseudo-labels: the unlabelled images that label spreading over the pool's
neighbour graph (:mod:`labeler.learning.pool_graph`) and the head itself agree on most, a
few per class, with a low weight. What comes out is again a linear head (``coef_``,
``intercept_``), so it is saved as plain arrays, exported like the logistic head and scores
a 1,000,000-image pool in one pass.

Why this shape: on Lite0 embeddings label spreading alone beats the logistic head below ~50
labels (10 classes) but falls behind above it, because a neighbour graph in the raw
embedding space is only ~77 % pure (10-NN) while the classes are ~94 % linearly separable.
Handing the graph's most confident guesses to the linear head as weak extra examples keeps
the gain at small budgets and costs nothing at large ones (``docs/issue16-levers.md``).

The semi-supervised convention is scikit-learn's: ``fit(X, y)`` takes the whole pool, and
unlabelled rows carry the label :data:`UNLABELLED` (-1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

from .heads import LogisticHead, NotEnoughLabels, pool_statistics
from .pool_graph import PoolGraph, build_pool_graph, label_seeds, spread_labels

#: The label of an unlabelled pool row in ``PseudoLabelHead.fit``.
UNLABELLED = -1


def _labelled_mask(y: np.ndarray) -> np.ndarray:
    """True where ``y`` holds a label; only integer labels can be :data:`UNLABELLED`."""
    if y.dtype.kind in "iu":
        return y != UNLABELLED
    if y.dtype.kind == "f":
        return ~np.isnan(y) & (y != UNLABELLED)
    return np.ones(len(y), dtype=bool)


def most_confident_per_class(
    proba: np.ndarray, eligible: np.ndarray, per_class: int
) -> np.ndarray:
    """The ``per_class`` eligible rows most confidently predicted as each class.

    Args:
        proba: Class distribution per row, shape ``(n_rows, n_classes)``.
        eligible: Boolean, shape ``(n_rows,)``; rows that may be chosen.
        per_class: Most rows per predicted class.

    Returns:
        Row indices (``int64``), grouped by class, most confident first within a class.
    """
    predicted = proba.argmax(axis=1)
    confidence = proba.max(axis=1)
    chosen = []
    for column in range(proba.shape[1]):
        rows = np.flatnonzero(eligible & (predicted == column))
        chosen.append(rows[np.argsort(-confidence[rows], kind="stable")[:per_class]])
    return np.concatenate(chosen).astype(np.int64) if chosen else np.empty(0, np.int64)


class PseudoLabelHead(LogisticHead):
    """A logistic head trained on the labels and on pseudo-labels from the unlabelled pool.

    ``fit`` takes the whole pool, unlabelled rows labelled :data:`UNLABELLED`. It fits the
    logistic head on the labels, spreads the labels over the pool's neighbour graph, and
    then, ``passes`` times (one was as good as three, at half the cost): mixes the spread
    distribution with the current head's probabilities (``spread_share`` of the former),
    takes the ``per_class`` unlabelled graph nodes it is most sure of for each class, and
    refits the head on the labels plus those pseudo-labels at weight ``pseudo_weight``.
    On fixed typical label sets of Lite0 embeddings (10 classes) it gained 4-15 points over
    the logistic head at 10-20 labels and 0-3 points at 50-400, whereas self-training alone
    (no graph) lost at 10-20 labels and label spreading alone lost from 50 labels on.

    The fitted head is linear: prediction, saving and export are those of
    :class:`~labeler.learning.heads.LogisticHead`. Without unlabelled rows it is that head.

    Args:
        graph: The pool's graph from :func:`build_pool_graph` (one row per row of the ``X``
            given to ``fit``), or None to build it inside ``fit`` (small pools, tests).
        C: Inverse regularisation strength of the logistic regression.
        max_iter: Iteration limit of the lbfgs solver.
        pool_mean: Per-feature mean of the pool, or None to compute it from ``X`` in ``fit``.
        pool_scale: Per-feature standard deviation of the pool, or None (as ``pool_mean``).
        spread_alpha: Label spreading's ``alpha``.
        spread_share: Weight of label spreading against the head when choosing
            pseudo-labels (0 is plain self-training).
        per_class: Pseudo-labels per class and pass.
        pseudo_weight: Sample weight of a pseudo-label (a label weighs 1).
        passes: Rounds of choosing pseudo-labels and refitting (0 is the logistic head).

    Attributes:
        classes_: The labels seen in ``fit`` (never :data:`UNLABELLED`), sorted.
        coef_, intercept_, n_iter_, n_features_in_: As in
            :class:`~labeler.learning.heads.LogisticHead`.
        pseudo_labelled_: Pool positions of the rows pseudo-labelled in the last refit.
        n_pseudo_labels_: How many there were.
    """

    #: ``fit`` wants the whole pool with unlabelled rows marked, not the labelled rows alone.
    uses_unlabelled = True

    def __init__(
        self,
        graph: PoolGraph | None = None,
        C: float = 0.1,
        max_iter: int = 1000,
        pool_mean: Any = None,
        pool_scale: Any = None,
        spread_alpha: float = 0.9,
        spread_share: float = 0.5,
        per_class: int = 100,
        pseudo_weight: float = 0.3,
        passes: int = 1,
    ) -> None:
        self.graph = graph
        self.C = C
        self.max_iter = max_iter
        self.pool_mean = pool_mean
        self.pool_scale = pool_scale
        self.spread_alpha = spread_alpha
        self.spread_share = spread_share
        self.per_class = per_class
        self.pseudo_weight = pseudo_weight
        self.passes = passes

    def fit(  # type: ignore[override]
        self, X: Any, y: Any, held_out: Any = None
    ) -> PseudoLabelHead:
        """Fit on the pool: labelled rows and unlabelled rows (label :data:`UNLABELLED`).

        Args:
            X: Pool embeddings, shape ``(n_items, dim)``; may be a float16 memory-map.
            y: Label per row, :data:`UNLABELLED` where there is none, shape ``(n_items,)``.
            held_out: Positions of rows whose labels are hidden to measure the head (a
                cross-validation fold): they are never pseudo-labelled, as a held-out image
                outside the pool could not be. Without this their out-of-fold predictions
                would be those of a head trained on its own guess about them.

        Returns:
            self

        Raises:
            NotEnoughLabels: No labels, or labels of only one class.
            ValueError: ``graph`` was built for a pool of another size.
        """
        # No copy of a float16 pool (a memory-map stays one); sparse and complex refused.
        X = check_array(X, accept_sparse=False, dtype=(np.float32, np.float64, np.float16),
                        ensure_all_finite=False)
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        positions = np.flatnonzero(_labelled_mask(y))
        if len(positions) == 0:
            raise NotEnoughLabels("No images have labels yet; label images of at least two "
                                  "classes before training.")
        if self.pool_mean is None or self.pool_scale is None:
            with np.errstate(invalid="ignore", over="ignore"):
                mean, scale = pool_statistics(X)
            if not (np.isfinite(mean).all() and np.isfinite(scale).all()):
                raise ValueError("Input X contains NaN or infinity; re-embed the affected "
                                 "images.")
        else:
            mean, scale = self.pool_mean, self.pool_scale

        def new_head() -> LogisticHead:
            return LogisticHead(C=self.C, max_iter=self.max_iter, pool_mean=mean,
                                pool_scale=scale)

        X_labelled = np.asarray(X[positions])
        y_labelled = y[positions]
        head = new_head().fit(X_labelled, y_labelled)
        pseudo_labelled = np.empty(0, dtype=np.int64)
        graph = self._graph_for(X, len(positions))
        if graph is not None:
            codes = np.searchsorted(head.classes_, y_labelled)
            seeds = label_seeds(graph, positions, codes, len(head.classes_), X_labelled)
            spread = spread_labels(graph, seeds, alpha=self.spread_alpha)
            node_rows = np.asarray(X[graph.nodes], dtype=np.float32)
            excluded = positions if held_out is None else np.concatenate(
                [positions, np.asarray(held_out, dtype=np.int64).ravel()])
            excluded_nodes = graph.node_of(excluded)
            is_eligible = np.ones(len(graph.nodes), dtype=bool)
            is_eligible[excluded_nodes[excluded_nodes >= 0]] = False
            for _ in range(self.passes):
                mixed = (self.spread_share * spread
                         + (1.0 - self.spread_share) * head.predict_proba(node_rows))
                chosen = most_confident_per_class(mixed, is_eligible, self.per_class)
                pseudo_labelled = graph.nodes[chosen]
                weights = np.concatenate([np.ones(len(positions)),
                                          np.full(len(chosen), float(self.pseudo_weight))])
                head = new_head().fit(
                    np.concatenate([X_labelled.astype(np.float32), node_rows[chosen]]),
                    np.concatenate([y_labelled, head.classes_[mixed[chosen].argmax(axis=1)]]),
                    sample_weight=weights, start_from=head)
        self.coef_ = head.coef_
        self.intercept_ = head.intercept_
        self.classes_ = head.classes_
        self.n_iter_ = head.n_iter_
        self.n_features_in_ = head.n_features_in_
        self.pseudo_labelled_ = pseudo_labelled
        self.n_pseudo_labels_ = len(pseudo_labelled)
        return self

    def _graph_for(self, X: Any, n_labelled: int) -> PoolGraph | None:
        """The graph to spread over, or None when there is nothing to pseudo-label."""
        if self.passes <= 0 or self.per_class <= 0 or n_labelled >= X.shape[0]:
            return None
        if self.graph is None:
            return build_pool_graph(X)
        if self.graph.n_items != X.shape[0]:
            raise ValueError(
                f"The graph was built for a pool of {self.graph.n_items} images but X has "
                f"{X.shape[0]} rows; build the graph again for this pool.")
        return self.graph
