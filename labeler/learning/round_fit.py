"""Fit a round's head and measure it: the one code path of rounds and ``labeler simulate``.

:func:`fit_round` fits the head on the pool (a semi-supervised head sees every image, with
unlabelled rows marked :data:`~labeler.learning.pseudo_label.UNLABELLED`), gets every
label's out-of-fold probabilities from one k-fold pass, fits a temperature on them and
folds it into a linear head. A retrain round stores what comes back; the simulation replays
it on labelled data; so a curve ``simulate`` draws is a curve rounds would have followed.

The out-of-fold probabilities feed the round's accuracy, suspected label errors, the
reliability curve and the precision thresholds (:mod:`labeler.learning.stopping`). Under
active learning the labelled images lean towards hard ones, so these figures are, if
anything, pessimistic about the auto-tags of the rest of the pool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .calibration import (
    ReliabilityCurve,
    apply_temperature,
    fit_temperature,
    out_of_fold_proba,
    reliability_curve,
)
from .heads import LogisticHead
from .pseudo_label import UNLABELLED
from .rng import RandomLike

#: Folds of the out-of-fold pass (fewer when a class has fewer labels).
MAX_FOLDS = 5


@dataclass(frozen=True)
class OutOfFold:
    """Every label's probabilities from a head that did not see it.

    Attributes:
        proba: Raw out-of-fold probabilities, shape ``(n_labels, n_classes)``.
        calibrated: The same at the round's temperature.
        classes: The label of each column.
        positions: Pool position of each row.
        labels: The given label of each row.
    """

    proba: np.ndarray
    calibrated: np.ndarray
    classes: np.ndarray
    positions: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class FittedRound:
    """What :func:`fit_round` returns.

    Attributes:
        head: The head fitted on every label, its probabilities as they are (rank by these).
        calibrated_head: ``head`` with the temperature folded into its weights (a
            :class:`~labeler.learning.heads.LogisticHead`): the head to save, export and
            show confidences from. ``head`` itself when no temperature applies.
        temperature: The fitted temperature; 1.0 when there was nothing to fit it on or the
            head is not linear.
        oof: The out-of-fold pass, or None when a class has fewer than two labels.
    """

    head: Any
    calibrated_head: Any
    temperature: float
    oof: OutOfFold | None

    def reliability(self) -> tuple[ReliabilityCurve, ReliabilityCurve] | None:
        """Out-of-fold reliability before and after the temperature, or None without CV."""
        if self.oof is None:
            return None
        return (reliability_curve(self.oof.proba, self.oof.labels, self.oof.classes),
                reliability_curve(self.oof.calibrated, self.oof.labels, self.oof.classes))


def uses_unlabelled(make_head: Callable[[], Any]) -> bool:
    """Whether the heads ``make_head`` makes are fitted on the whole pool."""
    return bool(getattr(make_head(), "uses_unlabelled", False))


def fit_head(make_head: Callable[[], Any], embeddings: Any, labels: np.ndarray) -> Any:
    """Fit one head on the pool, the way a round does.

    Args:
        make_head: Returns an unfitted head.
        embeddings: The pool, shape ``(n_items, dim)`` (a float16 memory-map is fine).
        labels: Integer class per row, :data:`UNLABELLED` where none.

    Raises:
        NotEnoughLabels: Fewer than two classes have labels.
    """
    labels = np.asarray(labels)
    if uses_unlabelled(make_head):
        return make_head().fit(embeddings, labels)
    positions = np.flatnonzero(labels != UNLABELLED)
    return make_head().fit(np.asarray(embeddings[positions], dtype=np.float32),
                           labels[positions])


def with_temperature(head: Any, temperature: float) -> LogisticHead | None:
    """A linear head whose probabilities are ``head``'s at ``temperature``, or None.

    Dividing the logits by ``T`` is dividing the weights and biases by ``T``, so the
    calibrated head is still one matrix product: saved, exported and scored like any other.
    """
    if not isinstance(head, LogisticHead):
        return None
    folded = LogisticHead(C=head.C, max_iter=head.max_iter)
    folded.coef_ = np.asarray(head.coef_) / temperature
    folded.intercept_ = np.asarray(head.intercept_) / temperature
    folded.classes_ = head.classes_
    folded.n_iter_ = head.n_iter_
    folded.n_features_in_ = head.n_features_in_
    return folded


def fit_round(
    make_head: Callable[[], Any],
    embeddings: Any,
    labels: np.ndarray,
    rng: RandomLike = 0,
) -> FittedRound:
    """Fit the head on all labels, cross-validate it once and calibrate it.

    Args:
        make_head: Returns an unfitted head (see :mod:`labeler.learning.head_options`).
        embeddings: The pool, shape ``(n_items, dim)``.
        labels: Integer class per row, :data:`UNLABELLED` where none.
        rng: Seed of the fold assignment.

    Returns:
        The fitted round.

    Raises:
        NotEnoughLabels: Fewer than two classes have labels.
    """
    labels = np.asarray(labels, dtype=np.int64)
    head = fit_head(make_head, embeddings, labels)
    found = out_of_fold_proba(make_head, embeddings, labels, MAX_FOLDS, rng)
    if found is None:
        return FittedRound(head, head, 1.0, None)
    proba, classes, positions = found
    given = labels[positions]
    temperature = fit_temperature(proba, given, classes)
    calibrated_head = with_temperature(head, temperature)
    if calibrated_head is None:  # not linear: confidences stay as the head gives them
        temperature, calibrated_head = 1.0, head
    calibrated = apply_temperature(proba, temperature) if temperature != 1.0 else proba
    return FittedRound(head, calibrated_head, temperature,
                       OutOfFold(proba, calibrated, classes, positions, given))
