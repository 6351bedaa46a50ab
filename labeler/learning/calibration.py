"""Calibration: make an auto-tag's confidence mean what it says.

Pure numpy and scikit-learn. :func:`expected_calibration_error` and :func:`reliability_curve`
measure calibration on items whose labels are known; :func:`fit_temperature` finds the one
temperature ``T`` that makes out-of-fold probabilities honest (Guo et al., 2017), and
:func:`apply_temperature` uses it. :class:`TemperatureScaledHead` wraps any head with the
estimator contract, supervised or semi-supervised (:mod:`labeler.learning.pseudo_label`), and
fits ``T`` by cross-validation on the labels, so no label is spent on a calibration split.

Temperature scaling divides the logits by ``T``: the most probable class never changes
(accuracy is untouched) and, for a linear head, the calibrated head is the same head with
``coef_ / T`` and ``intercept_ / T``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from .pseudo_label import UNLABELLED
from .rng import RandomLike

#: Equal-width confidence bins of the ECE (Guo et al. use 15).
ECE_BINS = 15
# Temperatures searched; outside this range the labels are too few to say anything.
_MIN_TEMPERATURE, _MAX_TEMPERATURE = 0.05, 20.0
# Probabilities are clipped here before taking logs, so a 0 is not an infinite logit.
_EPS = 1e-12


@dataclass(frozen=True)
class ReliabilityCurve:
    """Accuracy against confidence, in equal-width confidence bins.

    Attributes:
        edges: Bin edges, shape ``(n_bins + 1,)``, from 0 to 1.
        confidence: Mean top-class probability of the items in each bin (NaN if empty).
        accuracy: Share of those items whose top class is right (NaN if empty).
        counts: Items per bin.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean gap |accuracy - confidence|."""
        filled = self.counts > 0
        if not filled.any():
            return float("nan")
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float(np.sum(gaps * self.counts[filled]) / self.counts.sum())


def _correct(proba: np.ndarray, y_true: Any, classes: np.ndarray) -> np.ndarray:
    return np.asarray(classes)[np.argmax(proba, axis=1)] == np.asarray(y_true)


def reliability_curve(
    proba: np.ndarray, y_true: Any, classes: Any, n_bins: int = ECE_BINS
) -> ReliabilityCurve:
    """Bin items by their top-class probability and compare with how often it is right.

    Args:
        proba: Class probabilities, shape ``(n_items, n_classes)``.
        y_true: True label of each item.
        classes: The label of each column of ``proba``.
        n_bins: Equal-width bins over ``[0, 1]``; a confidence of exactly 1 goes in the last.

    Returns:
        The curve; its ``ece`` property is the expected calibration error.
    """
    proba = np.asarray(proba, dtype=np.float64)
    confidence = proba.max(axis=1)
    correct = _correct(proba, y_true, np.asarray(classes))
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, confidence, n_bins) / counts
        accuracy = np.bincount(which, correct.astype(np.float64), n_bins) / counts
    return ReliabilityCurve(edges, mean_confidence, accuracy, counts)


def expected_calibration_error(
    proba: np.ndarray, y_true: Any, classes: Any, n_bins: int = ECE_BINS
) -> float:
    """Top-label ECE: the count-weighted mean gap between confidence and accuracy per bin."""
    return reliability_curve(proba, y_true, classes, n_bins).ece


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Rescale probabilities as if their logits were divided by ``temperature``."""
    logits = np.log(np.clip(np.asarray(proba, dtype=np.float64), _EPS, 1.0))
    return softmax(logits / float(temperature), axis=1)


def fit_temperature(proba: np.ndarray, y_true: Any, classes: Any) -> float:
    """The temperature that minimises the negative log-likelihood of held-out probabilities.

    Args:
        proba: Out-of-fold class probabilities of labelled items, ``(n_items, n_classes)``.
        y_true: Their labels, each one of ``classes``.
        classes: The label of each column of ``proba``.

    Returns:
        ``T`` in ``[0.05, 20]``; above 1 softens over-confident probabilities, below 1
        sharpens timid ones. 1 when there are no items.

    Raises:
        ValueError: A label is not among ``classes``.
    """
    classes = np.asarray(classes)
    y_true = np.asarray(y_true)
    if len(y_true) == 0:
        return 1.0
    columns = np.searchsorted(classes, y_true)
    if np.any(columns >= len(classes)) or np.any(classes[np.minimum(columns, len(classes) - 1)]
                                                 != y_true):
        raise ValueError("Every label must be one of the classes of the probabilities.")
    logits = np.log(np.clip(np.asarray(proba, dtype=np.float64), _EPS, 1.0))
    rows = np.arange(len(y_true))

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t), axis=1)[rows, columns].mean())

    found = minimize_scalar(nll, bounds=(np.log(_MIN_TEMPERATURE), np.log(_MAX_TEMPERATURE)),
                            method="bounded", options={"xatol": 1e-4})
    return float(np.exp(found.x))


def out_of_fold_proba(
    make_head: Callable[[], Any],
    X: Any,
    y: Any,
    max_folds: int = 5,
    rng: RandomLike = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Every labelled item's probabilities from a head that did not see its label.

    Works for both kinds of head: one with ``uses_unlabelled`` is fitted on the whole pool
    with the fold's labels hidden (so it still sees every image, as in a round) and told
    which rows are held out (``fit(X, y, held_out=...)``), so that it does not pseudo-label
    them; any other is fitted on the fold's labelled rows.

    Args:
        make_head: Returns an unfitted head.
        X: Pool embeddings, shape ``(n_items, dim)``.
        y: Label per row, :data:`~labeler.learning.pseudo_label.UNLABELLED` where none (integer
            labels), shape ``(n_items,)``.
        max_folds: Most folds; fewer when a class has fewer labels.
        rng: Seed of the fold assignment.

    Returns:
        ``(proba, classes, positions)``: out-of-fold probabilities of the labelled rows at
        ``positions`` (columns ``classes``), or None when a class has fewer than two labels.
    """
    y = np.asarray(y)
    positions = np.flatnonzero(y != UNLABELLED) if y.dtype.kind in "iu" else np.arange(len(y))
    labels = y[positions]
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2 or counts.min() < 2:
        return None
    folds = StratifiedKFold(n_splits=int(min(max_folds, counts.min())), shuffle=True,
                            random_state=int(np.random.default_rng(rng).integers(2**31 - 1)))
    proba = np.zeros((len(positions), len(classes)))
    semi = getattr(make_head(), "uses_unlabelled", False)
    for train, test in folds.split(np.zeros((len(labels), 1)), labels):
        if semi:
            hidden = y.copy()
            hidden[positions[test]] = UNLABELLED
            head = make_head().fit(X, hidden, held_out=positions[test])
        else:
            # Labelled rows only, in float32 (a round's pool is float16 on disk).
            head = make_head().fit(np.asarray(X[positions[train]], dtype=np.float32),
                                   labels[train])
        columns = np.searchsorted(classes, head.classes_)
        proba[np.ix_(test, columns)] = head.predict_proba(
            np.asarray(X[positions[test]], dtype=np.float32))
    return proba, classes, positions


class TemperatureScaledHead(ClassifierMixin, BaseEstimator):
    """A head whose probabilities are temperature-scaled, ``T`` fitted by cross-validation.

    ``fit`` takes what the wrapped head takes (the pool with unlabelled rows marked, for a
    semi-supervised head). With fewer than two labels in some class there is nothing to
    cross-validate and ``temperature_`` is 1.

    Args:
        estimator: The unfitted head to wrap (cloned by ``fit``).
        max_folds: Most cross-validation folds.
        random_state: Seed of the fold assignment.

    Attributes:
        estimator_: The head fitted on every label.
        temperature_: The fitted temperature.
        classes_: ``estimator_.classes_``.
    """

    def __init__(self, estimator: Any = None, max_folds: int = 5, random_state: int = 0) -> None:
        self.estimator = estimator
        self.max_folds = max_folds
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> TemperatureScaledHead:
        """Fit the head on all labels and the temperature on its out-of-fold probabilities."""
        from sklearn.base import clone

        from .heads import LogisticHead

        base = LogisticHead() if self.estimator is None else self.estimator
        y = np.asarray(y)
        oof = out_of_fold_proba(lambda: clone(base), X, y, self.max_folds, self.random_state)
        self.temperature_ = 1.0 if oof is None else fit_temperature(oof[0], y[oof[2]], oof[1])
        self.estimator_ = clone(base).fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """The wrapped head's probabilities at the fitted temperature."""
        check_is_fitted(self)
        return apply_temperature(self.estimator_.predict_proba(X), self.temperature_)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class (the same as the wrapped head's)."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
