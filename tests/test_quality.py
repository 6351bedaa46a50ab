"""Label quality: cross-validated metrics, near-duplicate groups (label issues: elsewhere)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from labeler.learning.duplicates import near_duplicate_groups
from labeler.learning.heads import LogisticHead
from labeler.learning.label_quality import cross_validated_proba, round_metrics


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Four well-separated blobs in 16 dimensions, float16 like the embedding matrix."""
    X, y = make_blobs(200, n_features=16, centers=4, cluster_std=1.0, random_state=3)
    return X.astype(np.float16), np.array(["cat", "dog", "fox", "owl"])[y]


# --- cross-validation --------------------------------------------------------------------------


def test_cross_validated_proba_is_out_of_fold_and_reproducible(blobs) -> None:
    X, y = blobs
    proba, classes = cross_validated_proba(LogisticHead, X, y, max_folds=5, rng=0)
    assert classes.tolist() == ["cat", "dog", "fox", "owl"]
    assert proba.shape == (200, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (classes[proba.argmax(axis=1)] == y).mean() > 0.95
    again, _ = cross_validated_proba(LogisticHead, X, y, max_folds=5, rng=0)
    np.testing.assert_array_equal(proba, again)
    # A model trained on everything is surer of its training items than the out-of-fold ones.
    fitted = LogisticHead().fit(X, y).predict_proba(X)
    rows = np.arange(len(y))
    assert (
        fitted[rows, np.searchsorted(classes, y)].mean()
        > proba[rows, np.searchsorted(classes, y)].mean()
    )


def test_too_few_labels_per_class_is_none(blobs) -> None:
    X, y = blobs
    keep = np.r_[np.flatnonzero(y != "owl"), np.flatnonzero(y == "owl")[:1]]  # a single owl
    assert cross_validated_proba(LogisticHead, X[keep], y[keep]) is None
    assert cross_validated_proba(LogisticHead, X[:5], np.array(["cat"] * 5)) is None
    # Two of the rarest class is enough: two folds.
    keep = np.r_[np.flatnonzero(y != "owl"), np.flatnonzero(y == "owl")[:2]]
    proba, classes = cross_validated_proba(LogisticHead, X[keep], y[keep], max_folds=5)
    assert proba.shape == (len(keep), 4)
    with pytest.raises(ValueError, match="max_folds"):
        cross_validated_proba(LogisticHead, X, y, max_folds=1)


class _ForgetsLastClass:
    """A fake head that never learns the last class it is shown (as a fold model might)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> _ForgetsLastClass:
        self.classes_ = np.unique(y)[:-1]
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.full((len(X), len(self.classes_)), 1.0 / len(self.classes_))


def test_a_class_missing_from_a_fold_model_gets_zeros(blobs) -> None:
    X, y = blobs
    proba, classes = cross_validated_proba(_ForgetsLastClass, X, y, rng=0)
    np.testing.assert_array_equal(proba[:, classes.tolist().index("owl")], 0.0)
    np.testing.assert_allclose(proba[:, :3], 1 / 3)


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_on_a_known_confusion() -> None:
    y_true = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 1, 0])
    proba = np.eye(3)[predicted] * 0.7 + 0.1  # the argmax is the prediction
    metrics = round_metrics(y_true, proba, np.array([0, 1, 2]))
    assert metrics["confusion"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["labels"] == [0, 1, 2]
    assert metrics["n"] == 6
    assert metrics["per_class"]["1"] == {
        "precision": pytest.approx(2 / 3),
        "recall": 1.0,
        "f1": pytest.approx(0.8),
        "support": 2,
    }
    assert metrics["per_class"]["2"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # Same numbers as scikit-learn's, with zero_division=0.
    p, r, f, s = precision_recall_fscore_support(y_true, predicted, zero_division=0)
    for j in range(3):
        assert [metrics["per_class"][str(j)][k] for k in ("precision", "recall", "f1")] == (
            pytest.approx([p[j], r[j], f[j]])
        )
    assert metrics["macro_f1"] == pytest.approx(f1_score(y_true, predicted, average="macro"))
    assert metrics["confusion"] == confusion_matrix(y_true, predicted).tolist()


def test_metrics_are_json_and_keep_the_class_order() -> None:
    classes = np.array(["sea", "city", "forest"])  # column order, deliberately unsorted
    y_true = np.array(["city", "sea", "forest", "forest"])
    proba = np.array([[0.1, 0.8, 0.1], [0.6, 0.2, 0.2], [0.2, 0.2, 0.6], [0.5, 0.1, 0.4]])
    metrics = json.loads(json.dumps(round_metrics(y_true, proba, classes)))
    assert metrics["labels"] == ["sea", "city", "forest"]
    assert metrics["confusion"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert metrics["per_class"]["forest"]["recall"] == 0.5
    with pytest.raises(ValueError, match="not among the classes"):
        round_metrics(np.array(["moon"]), proba[:1], classes)


# --- near-duplicates ----------------------------------------------------------------------------


def _with_copies(
    n: int, dim: int, n_copies: int, cosine: float, seed: int, positive: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random rows, ``n_copies`` of which are replaced by a noisy copy of another row."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dim)).astype(np.float32)
    if positive:  # like pooled ReLU features: all positive, pairwise cosine ~0.75
        X = np.abs(X) + 0.3 * np.abs(rng.standard_normal(dim)).astype(np.float32)
    rows = rng.permutation(n)
    originals, copies = rows[:n_copies], rows[n_copies : 2 * n_copies]
    unit = X[originals] / np.linalg.norm(X[originals], axis=1, keepdims=True)
    noise = rng.standard_normal((n_copies, dim)).astype(np.float32)
    noise -= (noise * unit).sum(axis=1, keepdims=True) * unit  # orthogonal to the original
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    X[copies] = cosine * unit + np.sqrt(1 - cosine**2) * noise
    return X, originals, copies


def _cosine(X: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    A, B = X[a].astype(np.float64), X[b].astype(np.float64)
    return (A * B).sum(axis=1) / np.linalg.norm(A, axis=1) / np.linalg.norm(B, axis=1)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_noisy_copies_are_grouped_with_their_originals(dtype) -> None:
    X, originals, copies = _with_copies(8000, 128, 200, cosine=0.99, seed=1)
    X = X.astype(dtype)
    groups = near_duplicate_groups(X)
    found = (groups[originals] == groups[copies]) & (groups[originals] >= 0)
    assert found.mean() >= 0.95
    # Nothing else is grouped: random 128-d rows are nowhere near cosine 0.95.
    assert (groups >= 0).sum() == 2 * found.sum()
    assert groups.dtype == np.int64 and groups.shape == (8000,)


def test_copies_of_positive_embeddings_are_found(tmp_path) -> None:
    # All-positive rows (cosine ~0.75 between any two) from a float16 memory-map, like the pool.
    X, originals, copies = _with_copies(8000, 256, 200, cosine=0.99, seed=2, positive=True)
    path = tmp_path / "pool.f16"
    X.astype(np.float16).tofile(path)
    pool = np.memmap(path, dtype=np.float16, mode="r", shape=X.shape)
    groups = near_duplicate_groups(pool)
    found = (groups[originals] == groups[copies]) & (groups[originals] >= 0)
    assert found.mean() >= 0.9
    # Every grouped row has a near-duplicate in its group: groups are made of verified pairs.
    for g in np.unique(groups[groups >= 0]):
        members = np.flatnonzero(groups == g)
        a, b = np.triu_indices(len(members), 1)
        close = _cosine(pool, members[a], members[b]) >= 0.95
        assert set(members) == set(members[a[close]]) | set(members[b[close]])


def test_independent_random_rows_form_no_groups() -> None:
    X = np.random.default_rng(3).standard_normal((10_000, 64)).astype(np.float16)
    np.testing.assert_array_equal(near_duplicate_groups(X), -1)


def test_groups_are_connected_components_numbered_by_first_row() -> None:
    rng = np.random.default_rng(4)
    X = rng.standard_normal((500, 32))
    # A chain a ~ b ~ c (cosine 0.97 between neighbours) whose ends are only ~0.88 apart.
    a, u = rng.standard_normal(32), rng.standard_normal(32)
    a /= np.linalg.norm(a)
    u -= (u @ a) * a
    u /= np.linalg.norm(u)
    step = np.arccos(0.97)
    X[[40, 10, 300]] = [
        a,
        np.cos(step) * a + np.sin(step) * u,
        np.cos(2 * step) * a + np.sin(2 * step) * u,
    ]
    X[[7, 450]] = X[[450]] * [[1.0], [2.0]]  # same direction, different length
    X[[20, 21]] = 0.0  # zero rows have no direction: never grouped
    groups = near_duplicate_groups(X)
    assert groups[7] == groups[450] == 0  # first group: its first row is 7
    assert groups[10] == groups[40] == groups[300] == 1
    assert groups[20] == groups[21] == -1
    assert (groups >= 0).sum() == 5


def test_a_mass_of_identical_rows_is_one_group() -> None:
    # 300 copies share every key bit in every table: far more than max_bucket in one bucket.
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3000, 64)).astype(np.float16)
    X[1000:1300] = X[999]
    groups = near_duplicate_groups(X, max_bucket=16)
    assert (groups[999:1300] == 0).all()
    assert (groups >= 0).sum() == 301


def test_deterministic_and_argument_checks() -> None:
    X, _, _ = _with_copies(3000, 64, 50, cosine=0.98, seed=6)
    np.testing.assert_array_equal(
        near_duplicate_groups(X, seed=1), near_duplicate_groups(X, seed=1)
    )
    assert near_duplicate_groups(np.empty((0, 8))).shape == (0,)
    assert near_duplicate_groups(np.ones((1, 8))).tolist() == [-1]
    with pytest.raises(ValueError, match="2-D"):
        near_duplicate_groups(np.ones(8))
    with pytest.raises(ValueError, match="threshold"):
        near_duplicate_groups(X, threshold=0.0)
