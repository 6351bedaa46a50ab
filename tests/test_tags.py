"""Multi-label learning: one-vs-rest heads, F1 thresholds, metrics, persistence, rounds."""

from __future__ import annotations

import io

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

from labeler.learning.head_store import UnreadableHead, read_head_arrays, write_head_arrays
from labeler.learning.heads import NotEnoughLabels
from labeler.learning.tags import (
    DEFAULT_THRESHOLD,
    TAG_LOGISTIC,
    TagHeads,
    best_f1_threshold,
    fit_tag_round,
    set_confidence,
    tag_arrays,
    tag_heads_from_arrays,
    tag_metrics,
)


def _tagged(n=240, dim=12, n_tags=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim))
    W = rng.normal(size=(dim, n_tags))
    Y = (X @ W + 0.5 * rng.normal(size=(n, n_tags)) > 0.3).astype(np.uint8)
    return X, Y


def test_each_tag_head_is_scikit_learns_binary_logistic_regression():
    X, Y = _tagged()
    heads = TagHeads(C=0.1).fit(X, Y)
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    for t in range(Y.shape[1]):
        reference = LogisticRegression(C=0.1, tol=1e-10, max_iter=10_000).fit(Xs, Y[:, t])
        np.testing.assert_allclose(heads.predict_proba(X)[:, t],
                                   reference.predict_proba(Xs)[:, 1], atol=1e-4)


def test_a_tag_whose_labels_all_agree_gets_a_constant_probability():
    X, Y = _tagged(n=40)
    Y[:, 1] = 0  # nobody has tag 1
    Y[:, 2] = 1  # everybody has tag 2
    heads = TagHeads().fit(X, Y)
    proba = heads.predict_proba(np.random.default_rng(1).normal(size=(7, X.shape[1])))
    np.testing.assert_allclose(proba[:, 1], 0.5 / 41)
    np.testing.assert_allclose(proba[:, 2], 40.5 / 41)
    assert heads.constant_.tolist() == [False, True, True, False]
    assert np.ptp(proba[:, 0]) > 0.1  # the other tags are still learnt


def test_tag_heads_refuse_no_labels_and_bad_tags_with_a_sentence():
    with pytest.raises(NotEnoughLabels, match="tag a few images"):
        TagHeads().fit(np.empty((0, 3)), np.empty((0, 2)))
    with pytest.raises(ValueError, match="0 or 1"):
        TagHeads().fit(np.zeros((2, 3)), np.array([[0, 2], [1, 0]]))
    with pytest.raises(ValueError, match="one row of tags per embedding"):
        TagHeads().fit(np.zeros((3, 3)), np.zeros((2, 2)))


def test_float16_pool_scores_like_float32():
    X, Y = _tagged()
    heads = TagHeads().fit(X, Y)
    pool = X.astype(np.float16)
    np.testing.assert_allclose(heads.predict_proba(pool),
                               heads.predict_proba(pool.astype(np.float32)), atol=1e-6)


def _brute_force_best_f1(y, p):
    """The F1 of the best of all thresholds, by scikit-learn."""
    return max(f1_score(y, p >= t, zero_division=0) for t in np.r_[np.unique(p), 1.1])


@pytest.mark.parametrize("seed", range(5))
def test_threshold_reaches_the_best_f1_scikit_learn_finds(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 60)
    p = np.clip(0.3 * y + rng.random(60) * 0.7, 0, 1).round(2)  # ties included
    threshold = best_f1_threshold(y, p)
    assert f1_score(y, p >= threshold) == pytest.approx(_brute_force_best_f1(y, p))


def test_threshold_is_the_midpoint_of_the_best_cut():
    y = np.array([1, 1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.1])
    # Cutting below 0.6 gives F1 = 6/7, the best; the next lower score is 0.3.
    assert best_f1_threshold(y, p) == pytest.approx(0.45)
    assert best_f1_threshold(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4])) == DEFAULT_THRESHOLD


def test_tag_metrics_agree_with_scikit_learn():
    Y = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1]])
    P = np.array([[.9, .2, .6], [.4, .7, .8], [.6, .3, .2], [.2, .1, .9], [.3, .6, .1],
                  [.1, .8, .4]])
    thresholds = np.array([0.5, 0.5, 0.5])
    decided = (P >= thresholds).astype(int)

    metrics = tag_metrics(Y, P, thresholds, ["sea", "sky", "sunset"])

    assert metrics["kind"] == "multi_label"
    assert metrics["micro_f1"] == pytest.approx(f1_score(Y, decided, average="micro"))
    assert metrics["macro_f1"] == pytest.approx(f1_score(Y, decided, average="macro"))
    assert metrics["map"] == pytest.approx(average_precision_score(Y, P, average="macro"))
    assert metrics["cardinality"] == pytest.approx(Y.sum() / len(Y))
    for t, name in enumerate(["sea", "sky", "sunset"]):
        tag = metrics["per_tag"][name]
        assert tag["precision"] == pytest.approx(precision_score(Y[:, t], decided[:, t]))
        assert tag["recall"] == pytest.approx(recall_score(Y[:, t], decided[:, t]))
        assert tag["f1"] == pytest.approx(f1_score(Y[:, t], decided[:, t]))
        assert tag["average_precision"] == pytest.approx(average_precision_score(Y[:, t], P[:, t]))
        assert tag["support"] == int(Y[:, t].sum())
        assert tag["threshold"] == 0.5
    assert metrics["thresholds"] == {"sea": 0.5, "sky": 0.5, "sunset": 0.5}


def test_a_tag_without_positives_is_left_out_of_the_averages():
    Y = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    P = np.array([[.8, .9], [.3, .1], [.7, .2], [.4, .6]])
    metrics = tag_metrics(Y, P, np.array([0.5, 0.5]))
    assert metrics["per_tag"]["1"]["average_precision"] is None
    assert metrics["per_tag"]["1"]["recall"] is None
    assert metrics["map"] == pytest.approx(1.0)  # tag 0 alone, ranked perfectly
    assert metrics["macro_f1"] == pytest.approx(1.0)
    assert metrics["micro_f1"] == pytest.approx(f1_score(Y, P >= 0.5, average="micro"))


def test_set_confidence_is_the_product_of_each_decision_probability():
    P = np.array([[0.9, 0.2, 0.6], [0.5, 0.5, 0.5]])
    thresholds = np.array([0.5, 0.5, 0.7])
    np.testing.assert_allclose(set_confidence(P, thresholds),
                               [0.9 * 0.8 * 0.4, 0.5 * 0.5 * 0.5])


def test_tag_heads_round_trip_through_the_head_store_as_plain_arrays():
    X, Y = _tagged()
    heads = TagHeads(pool_mean=X.mean(axis=0), pool_scale=X.std(axis=0)).fit(
        X, Y, tags=["sea", "sky", "sunset", "snow"])
    heads.thresholds_ = np.array([0.3, 0.4, 0.5, 0.6])
    buffer = io.BytesIO()
    write_head_arrays(buffer, TAG_LOGISTIC, tag_arrays(heads))
    buffer.seek(0)

    kind, arrays = read_head_arrays(buffer)
    loaded = tag_heads_from_arrays(arrays)

    assert kind == TAG_LOGISTIC
    np.testing.assert_array_equal(loaded.predict_proba(X), heads.predict_proba(X))
    np.testing.assert_array_equal(loaded.thresholds_, heads.thresholds_)
    np.testing.assert_array_equal(loaded.predict(X), heads.predict(X))
    assert loaded.tags_.tolist() == ["sea", "sky", "sunset", "snow"]


def test_a_tag_head_file_with_mismatched_arrays_is_refused():
    X, Y = _tagged()
    arrays = tag_arrays(TagHeads().fit(X, Y))
    arrays["thresholds_"] = np.array([0.5])
    with pytest.raises(UnreadableHead, match="do not fit"):
        tag_heads_from_arrays(arrays)
    del arrays["coef_"]
    with pytest.raises(UnreadableHead, match="without its"):
        tag_heads_from_arrays(arrays)


def test_fit_tag_round_chooses_thresholds_out_of_fold_and_measures_there():
    X, Y = _tagged(n=300)
    labelled = np.zeros(len(X), dtype=bool)
    labelled[::2] = True

    fitted = fit_tag_round(X, Y, labelled, tags=["a", "b", "c", "d"], rng=0)

    assert fitted.oof is not None and fitted.oof.proba.shape == (150, 4)
    np.testing.assert_array_equal(fitted.oof.positions, np.flatnonzero(labelled))
    np.testing.assert_array_equal(fitted.head.thresholds_, fitted.thresholds)
    assert fitted.head.tags_.tolist() == ["a", "b", "c", "d"]
    for t in range(4):  # each threshold is the F1-best one on the out-of-fold probabilities
        assert fitted.thresholds[t] == best_f1_threshold(Y[labelled, t], fitted.oof.proba[:, t])
    again = tag_metrics(Y[labelled], fitted.oof.proba, fitted.thresholds, ["a", "b", "c", "d"])
    assert fitted.metrics == again
    assert fitted.metrics["micro_f1"] > 0.7  # learnable tags are learnt
    # The heads were fitted on the labelled rows only: the others' tags did not leak in.
    alone = TagHeads(pool_mean=X.mean(axis=0), pool_scale=X.std(axis=0)).fit(
        X[labelled], Y[labelled])
    np.testing.assert_allclose(fitted.head.predict_proba(X), alone.predict_proba(X), atol=1e-6)


def test_fit_tag_round_with_too_few_labels_keeps_default_thresholds():
    X, Y = _tagged(n=3)
    fitted = fit_tag_round(X, Y, tags=["a", "b", "c", "d"])
    assert fitted.oof is None
    assert fitted.thresholds.tolist() == [DEFAULT_THRESHOLD] * 4
    assert fitted.metrics["n_labels"] == 3 and fitted.metrics["micro_f1"] is None
