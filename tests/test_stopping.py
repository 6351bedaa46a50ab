"""The stopping hint and the precision thresholds, on hand-made numbers."""

from __future__ import annotations

import numpy as np
import pytest

from labeler.learning.round_fit import OutOfFold
from labeler.learning.round_report import confidence_for_precision, precision_thresholds
from labeler.learning.stopping import (
    LearningCurve,
    accuracy_interval,
    expected_gain,
    fit_learning_curve,
)


def test_the_wilson_interval_matches_the_textbook_and_narrows_with_more_items():
    # 80 of 100: Wilson 95 % interval 0.7112 .. 0.8666.
    low, high = accuracy_interval(0.8, 100)
    assert (low, high) == pytest.approx((0.7112, 0.8666), abs=1e-3)
    narrower = accuracy_interval(0.8, 1000)
    assert low < narrower[0] < 0.8 < narrower[1] < high
    assert accuracy_interval(1.0, 10) == pytest.approx((0.7225, 1.0), abs=1e-3)
    with pytest.raises(ValueError, match="at least one"):
        accuracy_interval(0.5, 0)


def test_the_learning_curve_fit_recovers_a_power_law_and_predicts_the_gain():
    truth = LearningCurve(a=0.9, b=0.8, c=0.6)
    n = np.array([20, 40, 60, 100, 140, 200])
    curve = fit_learning_curve(n, [truth.accuracy_at(x) for x in n])
    assert curve is not None
    assert curve.accuracy_at(400) == pytest.approx(truth.accuracy_at(400), abs=2e-3)
    gain = expected_gain(curve, 200)
    assert gain == pytest.approx(truth.accuracy_at(300) - truth.accuracy_at(200), abs=2e-3)
    assert expected_gain(curve, 2000) < gain  # the curve flattens


def test_no_curve_is_fitted_from_fewer_than_three_label_counts():
    assert fit_learning_curve([20, 40], [0.5, 0.6]) is None
    assert fit_learning_curve([20, 20, 40], [0.5, 0.52, 0.6]) is None


def test_the_confidence_for_a_precision_is_the_lowest_that_still_reaches_it():
    confidence = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    correct = np.array([True, True, True, False, True, False])
    # Running precision from the top: 1, 1, 1, .75, .8, .67.
    assert confidence_for_precision(confidence, correct, 0.95) == 0.9
    assert confidence_for_precision(confidence, correct, 0.8) == 0.7
    assert confidence_for_precision(confidence, correct, 0.5) == 0.6
    assert confidence_for_precision(confidence[3:4], correct[3:4], 0.5) is None


def test_precision_thresholds_are_per_predicted_class():
    classes = np.array([7, 9])
    calibrated = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])
    labels = np.array([7, 7, 9, 9, 7])  # class 9's most confident prediction is wrong
    oof = OutOfFold(calibrated, calibrated, classes, np.arange(5), labels)
    table = precision_thresholds(oof, (0.95, 0.5))
    assert table["0.95"] == {"7": 0.8, "9": None}
    assert table["0.5"] == {"7": 0.6, "9": 0.7}


def test_a_falling_curve_gives_no_gain_estimate_and_says_why():
    # The demo after 200 queue-chosen labels: accuracy drifts down as harder images come.
    from labeler.models import ModelRound
    from labeler.reports import outlook

    active = ModelRound(number=11, n_labels=200, metrics={"accuracy": 0.575, "n": 200})
    curve = [{"n_labels": n, "accuracy": a} for n, a in
             [(40, 0.675), (80, 0.575), (120, 0.533), (160, 0.581), (200, 0.575)]]
    shown = outlook(active, curve)
    assert shown["gain_next_100"] is None and shown["plateau"] is None
    assert "has not risen" in shown["note"]

    rising = [{"n_labels": n, "accuracy": a} for n, a in
              [(40, 0.50), (80, 0.60), (120, 0.65), (160, 0.68), (200, 0.70)]]
    shown = outlook(active, rising)
    assert shown["gain_next_100"] > 0 and "next 100 labels" in shown["note"]
