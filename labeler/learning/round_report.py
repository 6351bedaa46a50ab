"""A round's calibration and precision figures as JSON, from its out-of-fold predictions.

What the dashboard draws (the reliability curve and ECE before and after the temperature)
and what ``labeler export --min-precision`` uses (per class, the lowest calibrated
confidence above which the out-of-fold predictions of that class reach a precision).
Stored in the round's metrics, so pages and exports never refit anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .calibration import ReliabilityCurve
from .round_fit import FittedRound, OutOfFold

#: Precisions a round records a confidence threshold for (``--min-precision`` picks one).
PRECISIONS = (0.8, 0.9, 0.95, 0.98, 0.99)


def _bins(curve: ReliabilityCurve) -> list[dict[str, float | int]]:
    """The filled bins of a reliability curve (JSON has no NaN for the empty ones)."""
    return [{"low": float(curve.edges[i]), "high": float(curve.edges[i + 1]),
             "confidence": float(curve.confidence[i]), "accuracy": float(curve.accuracy[i]),
             "count": int(curve.counts[i])}
            for i in np.flatnonzero(curve.counts > 0)]


def calibration_report(fitted: FittedRound) -> dict[str, Any] | None:
    """Temperature, ECE before and after it, and both reliability curves; None without CV.

    The ECE after is measured on the same out-of-fold predictions the temperature was fitted
    on (one parameter, so the optimism is small); held-out figures are in
    ``docs/issue16-levers.md``.
    """
    curves = fitted.reliability()
    if curves is None:
        return None
    raw, calibrated = curves
    return {"temperature": float(fitted.temperature), "n": int(raw.counts.sum()),
            "ece_raw": float(raw.ece), "ece": float(calibrated.ece),
            "bins_raw": _bins(raw), "bins": _bins(calibrated)}


def confidence_for_precision(confidence: np.ndarray, correct: np.ndarray,
                             precision: float) -> float | None:
    """The lowest threshold ``t`` such that items with confidence >= ``t`` reach ``precision``.

    Items are taken from the most confident down; the threshold is the confidence of the
    last item at which the running precision is still at least ``precision``.

    Args:
        confidence: Calibrated confidence of each item predicted as one class.
        correct: Whether each of those predictions was right.
        precision: The precision wanted, in ``(0, 1]``.

    Returns:
        The threshold, or None when even the most confident item falls short.
    """
    order = np.argsort(-np.asarray(confidence, dtype=np.float64), kind="stable")
    hits = np.cumsum(np.asarray(correct, dtype=np.float64)[order])
    running = hits / np.arange(1, len(order) + 1)
    reaching = np.flatnonzero(running >= precision - 1e-12)
    if len(reaching) == 0:
        return None
    return float(np.asarray(confidence, dtype=np.float64)[order][reaching[-1]])


def precision_thresholds(oof: OutOfFold, precisions: tuple[float, ...] = PRECISIONS
                         ) -> dict[str, dict[str, float | None]]:
    """Per precision and per predicted class, the confidence an auto-tag needs.

    Returns:
        ``{str(precision): {str(class): threshold or None}}`` (JSON keys are strings); a
        class never predicted, or never precise enough, gets None: export none of it.
    """
    predicted = oof.classes[oof.calibrated.argmax(axis=1)]
    confidence = oof.calibrated.max(axis=1)
    correct = predicted == oof.labels
    table: dict[str, dict[str, float | None]] = {}
    for precision in precisions:
        table[str(precision)] = {
            str(label): confidence_for_precision(confidence[predicted == label],
                                                 correct[predicted == label], precision)
            for label in oof.classes.tolist()}
    return table
