"""Calibration on hand-made probabilities: ECE, reliability bins, temperature scaling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from labeler.learning.calibration import (
    TemperatureScaledHead,
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    out_of_fold_proba,
    reliability_curve,
)
from labeler.learning.heads import LogisticHead
from labeler.learning.pseudo_label import UNLABELLED, PseudoLabelHead


def test_ece_is_zero_when_confidence_matches_accuracy():
    # 10 items at confidence 0.8 of which 8 are right: perfectly calibrated.
    proba = np.tile([0.8, 0.2], (10, 1))
    y = np.array([0] * 8 + [1] * 2)
    assert expected_calibration_error(proba, y, [0, 1]) == pytest.approx(0.0)


def test_ece_is_the_count_weighted_gap():
    # 4 items at 0.9 with 2 right (gap 0.4) and 4 at 0.6 with 4 right (gap 0.4, other way).
    proba = np.array([[0.9, 0.1]] * 4 + [[0.4, 0.6]] * 4)
    y = np.array([0, 0, 1, 1, 1, 1, 1, 1])
    curve = reliability_curve(proba, y, [0, 1])
    assert curve.counts.sum() == 8 and curve.counts[np.searchsorted(curve.edges, 0.9) - 1] == 4
    assert curve.ece == pytest.approx(0.4)


def test_reliability_curve_puts_certainty_in_the_last_bin_and_leaves_empty_bins_nan():
    proba = np.array([[1.0, 0.0], [0.0, 1.0]])
    curve = reliability_curve(proba, ["cat", "cat"], ["cat", "dog"], n_bins=15)
    assert len(curve.edges) == 16 and curve.counts[-1] == 2
    assert curve.accuracy[-1] == pytest.approx(0.5)
    assert np.isnan(curve.accuracy[0])


def test_temperature_keeps_the_top_class_and_one_is_the_identity():
    proba = softmax(np.random.default_rng(0).normal(size=(50, 4)), axis=1)
    assert np.allclose(apply_temperature(proba, 1.0), proba)
    for t in (0.3, 3.0):
        scaled = apply_temperature(proba, t)
        assert np.array_equal(scaled.argmax(axis=1), proba.argmax(axis=1))
        assert np.allclose(scaled.sum(axis=1), 1.0)
    assert apply_temperature(proba, 3.0).max(axis=1).mean() < proba.max(axis=1).mean()


def test_fit_temperature_recovers_an_over_confident_model():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(20_000, 5))
    truth = softmax(logits, axis=1)
    y = np.array([rng.choice(5, p=row) for row in truth])
    over_confident = softmax(3.0 * logits, axis=1)  # logits three times too large
    t = fit_temperature(over_confident, y, np.arange(5))
    assert t == pytest.approx(3.0, rel=0.05)
    before = expected_calibration_error(over_confident, y, np.arange(5))
    after = expected_calibration_error(apply_temperature(over_confident, t), y, np.arange(5))
    assert after < 0.02 < before


def test_fit_temperature_refuses_unknown_labels_and_is_neutral_without_items():
    with pytest.raises(ValueError, match="classes"):
        fit_temperature(np.array([[0.5, 0.5]]), [7], [0, 1])
    assert fit_temperature(np.empty((0, 2)), [], [0, 1]) == 1.0


class _SpyHead(PseudoLabelHead):
    """Records the labels each fit saw."""

    seen: list[np.ndarray] = []
    held_out: list[np.ndarray] = []

    def fit(self, X, y, held_out=None):  # noqa: D102 - a spy
        _SpyHead.seen.append(np.asarray(y).copy())
        _SpyHead.held_out.append(np.asarray(held_out))
        return super().fit(X, y, held_out=held_out)


def _pool(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(8)[:3] * 6.0
    X = np.concatenate([c + rng.normal(0, 1.2, (80, 8)) for c in centres]).astype(np.float32)
    return X, np.repeat(np.arange(3), 80)


def test_out_of_fold_hides_each_fold_from_a_semi_supervised_head():
    X, y = _pool()
    masked = np.full(len(y), UNLABELLED)
    labelled = np.arange(0, len(y), 8)  # 30 labels, 10 per class
    masked[labelled] = y[labelled]
    _SpyHead.seen, _SpyHead.held_out = [], []
    proba, classes, positions = out_of_fold_proba(lambda: _SpyHead(passes=1), X, masked,
                                                  max_folds=5)
    assert positions.tolist() == labelled.tolist() and classes.tolist() == [0, 1, 2]
    assert proba.shape == (30, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert len(_SpyHead.seen) == 5
    hidden = [np.flatnonzero((seen == UNLABELLED) & (masked != UNLABELLED)) for seen in
              _SpyHead.seen]
    # Every labelled row is hidden from exactly one fold's head, and that head still got
    # the whole pool.
    assert sorted(np.concatenate(hidden).tolist()) == labelled.tolist()
    assert all(len(seen) == len(y) for seen in _SpyHead.seen)
    # ... and knew which rows were held out, so that it did not pseudo-label them.
    assert [sorted(h.tolist()) for h in _SpyHead.held_out] == [h.tolist() for h in hidden]


def test_out_of_fold_needs_two_labels_per_class():
    X, y = _pool()
    assert out_of_fold_proba(LogisticHead, X[[0, 1, 80]], y[[0, 1, 80]]) is None


def test_temperature_scaled_head_makes_an_over_confident_head_honest():
    rng = np.random.default_rng(1)
    # Overlapping classes and a nearly unregularised head: over-confident on new data.
    X = np.concatenate([rng.normal(0, 1, (1500, 20)), rng.normal(0.35, 1, (1500, 20))])
    y = np.repeat([0, 1], 1500)
    order = rng.permutation(3000)
    train, test = order[:200], order[200:]
    raw = LogisticHead(C=100.0).fit(X[train], y[train])
    scaled = TemperatureScaledHead(LogisticHead(C=100.0)).fit(X[train], y[train])
    ece_raw = expected_calibration_error(raw.predict_proba(X[test]), y[test], raw.classes_)
    ece = expected_calibration_error(scaled.predict_proba(X[test]), y[test], scaled.classes_)
    assert scaled.temperature_ > 1.5
    assert ece < ece_raw / 2, (ece, ece_raw)
    assert np.array_equal(scaled.predict(X[test]), raw.predict(X[test]))
