"""Classifier heads: scikit-learn's estimator checks, awkward label sets, the Keras head."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from labeler.embeddings.dense_head import KerasDenseHead
from labeler.errors import LabelerError
from labeler.learning.heads import LogisticHead, NotEnoughLabels


@parametrize_with_checks([LogisticHead()])
def test_logistic_head_follows_the_estimator_contract(estimator, check) -> None:
    # No check is skipped or marked xfail: LogisticHead passes all of them.
    check(estimator)


@pytest.fixture(scope="module")
def embeddings() -> tuple[np.ndarray, np.ndarray]:
    """Three blobs in 64 dimensions, float16 like the stored embedding matrix."""
    X, y = make_blobs(300, n_features=64, centers=3, cluster_std=4.0, random_state=0)
    return X.astype(np.float16), y


def test_fits_float16_and_returns_self(embeddings) -> None:
    X, y = embeddings
    head = LogisticHead()
    assert head.fit(X, y) is head
    proba = head.predict_proba(X)
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (head.predict(X) == y).mean() > 0.95


@pytest.mark.parametrize("n_classes", [2, 3])
def test_matches_a_scaler_and_logistic_regression_pipeline(embeddings, n_classes) -> None:
    X, y = embeddings
    keep = y < n_classes
    X, y = X[keep], y[keep]
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))
    expected = reference.fit(X.astype(np.float64), y).predict_proba(X.astype(np.float64))
    head = LogisticHead().fit(X, y)
    np.testing.assert_allclose(head.predict_proba(X), expected, atol=1e-5)
    assert head.coef_.shape == (1 if n_classes == 2 else n_classes, X.shape[1])


def test_string_labels_keep_their_order(embeddings) -> None:
    X, y = embeddings
    names = np.array(["shirt", "bag", "sandal"])[y]
    head = LogisticHead().fit(X, names)
    assert head.classes_.tolist() == ["bag", "sandal", "shirt"]
    # Column j of predict_proba is classes_[j].
    best = head.classes_[head.predict_proba(X).argmax(axis=1)]
    assert (best == names).mean() > 0.95
    assert set(head.predict(X[:5])) <= set(names)


def test_a_class_without_labels_has_no_column(embeddings) -> None:
    X, y = embeddings
    seen = y != 2  # the project defines three classes; nobody has labelled class 2 yet
    head = LogisticHead().fit(X[seen], y[seen])
    assert head.classes_.tolist() == [0, 1]
    assert head.predict_proba(X).shape == (300, 2)


def test_no_labels_is_an_explained_state() -> None:
    with pytest.raises(NotEnoughLabels, match="No images have labels yet; label images"):
        LogisticHead().fit(np.empty((0, 8), dtype=np.float16), np.array([]))


def test_one_class_is_an_explained_state(embeddings) -> None:
    X, _ = embeddings
    with pytest.raises(NotEnoughLabels) as raised:
        LogisticHead().fit(X[:10], ["cat"] * 10)
    assert str(raised.value) == (
        "Only one class ('cat') has labels; label at least one image of another class "
        "before training."
    )
    # Callers may catch it as a user-facing error or as scikit-learn's ValueError.
    assert isinstance(raised.value, LabelerError)
    assert isinstance(raised.value, ValueError)


def test_predict_proba_reads_a_memmap_in_chunks(embeddings, tmp_path, monkeypatch) -> None:
    import labeler.learning.heads as heads

    X, y = embeddings
    head = LogisticHead().fit(X, y)
    expected = head.predict_proba(X)
    np.save(tmp_path / "pool.npy", X)
    pool = np.load(tmp_path / "pool.npy", mmap_mode="r")
    monkeypatch.setattr(heads, "_PREDICT_CHUNK_ROWS", 64)  # 300 rows -> 5 chunks
    np.testing.assert_allclose(head.predict_proba(pool), expected, rtol=1e-5)


def test_wrong_width_is_reported(embeddings) -> None:
    X, y = embeddings
    head = LogisticHead().fit(X, y)
    with pytest.raises(ValueError, match="X has 10 features, but LogisticHead is expecting 64"):
        head.predict_proba(np.zeros((3, 10), dtype=np.float16))


def test_clone_keeps_parameters() -> None:
    head = clone(LogisticHead(C=1.0, max_iter=50))
    assert head.get_params() == {"C": 1.0, "max_iter": 50, "pool_mean": None,
                                 "pool_scale": None}
    assert not hasattr(head, "classes_")


def test_pool_statistics_match_numpy_on_a_float16_pool() -> None:
    from labeler.learning.heads import pool_statistics

    rng = np.random.default_rng(3)
    pool = (rng.normal(2.0, 3.0, size=(1000, 8))).astype(np.float16)
    pool[:, 5] = 1.5  # a constant feature gets scale 1, not 0
    mean, scale = pool_statistics(pool, chunk_rows=128)
    np.testing.assert_allclose(mean, pool.astype(np.float64).mean(axis=0), rtol=1e-9)
    expected = pool.astype(np.float64).std(axis=0)
    expected[5] = 1.0
    np.testing.assert_allclose(scale, expected, rtol=1e-6)


def test_pool_scaled_head_equals_a_pipeline_with_that_scaler() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 6))
    y = np.repeat(["a", "b", "c"], 20)
    X[y == "b"] += 1.5
    mean, scale = rng.normal(size=6), rng.uniform(0.5, 2.0, size=6)
    head = LogisticHead(pool_mean=mean, pool_scale=scale).fit(X, y)
    reference = LogisticRegression(C=0.1, max_iter=1000).fit((X - mean) / scale, y)
    np.testing.assert_allclose(head.predict_proba(X),
                               reference.predict_proba((X - mean) / scale), atol=1e-6)


@pytest.mark.integration
def test_keras_dense_head(embeddings) -> None:
    X, y = embeddings
    names = np.array(["shirt", "bag", "sandal"])[y]
    head = KerasDenseHead(epochs=5, seed=1)
    assert head.fit(X, names) is head
    assert head.classes_.tolist() == ["bag", "sandal", "shirt"]
    proba = head.predict_proba(X)
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert (head.predict(X) == names).mean() > 0.9
    # Same seed, same data: same model.
    again = KerasDenseHead(epochs=5, seed=1).fit(X, names).predict_proba(X)
    np.testing.assert_allclose(again, proba, atol=1e-6)
    with pytest.raises(NotEnoughLabels, match="Only one class"):
        KerasDenseHead(epochs=1).fit(X[:5], ["bag"] * 5)


def test_importing_the_heads_does_not_load_tensorflow() -> None:
    # A fresh interpreter: earlier tests in this session may have imported TensorFlow.
    code = (
        "import sys, labeler.learning.heads, labeler.learning.strategies, "
        "labeler.embeddings.dense_head; "
        "sys.exit(any(m in sys.modules for m in ('tensorflow', 'keras')))"
    )
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0
