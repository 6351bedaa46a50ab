"""When more labels stop paying: the accuracy now, with an interval, and the next 100's gain.

Two estimates from what rounds already measured (no refit):

* :func:`accuracy_interval` — a Wilson score interval around the cross-validated accuracy
  of the active round, over its ``n`` out-of-fold predictions.
* :func:`fit_learning_curve` — the inverse power law ``acc(n) = a - b * n^(-c)`` fitted to
  the rounds' cross-validated accuracies against their label counts (learning curves of
  classifiers follow it closely; Figueroa et al., 2012), and :func:`expected_gain`, what
  it predicts the next labels add.

Under active learning the labelled images lean towards hard ones, so both are measured on
harder images than the pool's average: read them as a floor more than a forecast.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

#: A 95 % interval.
Z_95 = 1.959964
#: Rounds (distinct label counts) needed before the curve is fitted.
MIN_POINTS = 3


def accuracy_interval(accuracy: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of an accuracy measured on ``n`` items.

    Raises:
        ValueError: ``n`` below 1 or an accuracy outside ``[0, 1]``.
    """
    if n < 1 or not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"An accuracy in [0, 1] over at least one item is needed; got "
                         f"{accuracy} over {n}.")
    denominator = 1.0 + z * z / n
    centre = (accuracy + z * z / (2 * n)) / denominator
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class LearningCurve:
    """``acc(n) = a - b * n^(-c)``: ``a`` is where the curve levels off."""

    a: float
    b: float
    c: float

    def accuracy_at(self, n_labels: float) -> float:
        """The accuracy the curve predicts at ``n_labels`` labels."""
        return float(self.a - self.b * float(n_labels) ** (-self.c))


def _power_law(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * np.power(n, -c)


def fit_learning_curve(n_labels: Sequence[float], accuracies: Sequence[float]
                       ) -> LearningCurve | None:
    """Fit the inverse power law to (labels, accuracy) points, or None if it cannot be.

    Args:
        n_labels: Label count of each round (positive).
        accuracies: Its cross-validated accuracy.

    Returns:
        The curve, or None with fewer than :data:`MIN_POINTS` distinct label counts or when
        the fit does not converge.
    """
    n = np.asarray(n_labels, dtype=np.float64)
    acc = np.asarray(accuracies, dtype=np.float64)
    keep = (n > 0) & np.isfinite(acc)
    n, acc = n[keep], acc[keep]
    if len(np.unique(n)) < MIN_POINTS:
        return None
    start = (min(1.0, float(acc.max()) + 0.02), 1.0, 0.5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            (a, b, c), _ = curve_fit(_power_law, n, acc, p0=start,
                                     bounds=([0.0, 0.0, 0.01], [1.0, 100.0, 3.0]),
                                     maxfev=5000)
    except (RuntimeError, ValueError):
        return None
    return LearningCurve(float(a), float(b), float(c))


def accuracy_rises(n_labels: Sequence[float], accuracies: Sequence[float]) -> bool:
    """Whether measured accuracy grows with the labels (least-squares slope on log labels).

    Cross-validated accuracy of actively chosen labels can fall as labels are added (the
    queue serves the hardest images); a power law fitted to such points reads as a plateau
    that is not there.
    """
    n = np.asarray(n_labels, dtype=np.float64)
    acc = np.asarray(accuracies, dtype=np.float64)
    keep = (n > 0) & np.isfinite(acc)
    if len(np.unique(n[keep])) < 2:
        return False
    slope = np.polyfit(np.log(n[keep]), acc[keep], 1)[0]
    return bool(slope > 0)


def expected_gain(curve: LearningCurve, n_labels: int, extra: int = 100) -> float:
    """The accuracy the curve predicts ``extra`` more labels add (never negative)."""
    return max(0.0, curve.accuracy_at(n_labels + extra) - curve.accuracy_at(n_labels))
