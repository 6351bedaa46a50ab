"""Query strategies on hand-written arrays, against modAL, and on synthetic blobs."""

from __future__ import annotations

import numpy as np
import pytest
from modAL.uncertainty import (
    classifier_entropy,
    classifier_margin,
    classifier_uncertainty,
    entropy_sampling,
    margin_sampling,
    uncertainty_sampling,
)
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression

from labeler.learning import clustering
from labeler.learning.clustering import typical_diverse_picks
from labeler.learning.strategies import (
    STRATEGIES,
    Picks,
    choose_strategy,
    diverse_uncertain_picks,
    entropy_scores,
    least_confident_scores,
    margin_scores,
    random_scores,
    rank_pool,
    select_top,
)

PROBA = np.array(
    [
        [0.9, 0.1, 0.0],  # sure
        [0.5, 0.5, 0.0],  # a tie between two classes
        [0.4, 0.3, 0.3],  # unsure of the best, but a clear margin
        [1 / 3, 1 / 3, 1 / 3],  # knows nothing
    ]
)


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Six well-separated blobs in 32 dimensions, as float16 like the embedding matrix."""
    X, y = make_blobs(1200, n_features=32, centers=6, cluster_std=1.0, random_state=0)
    return X.astype(np.float16), y


# --- scores ----------------------------------------------------------------------------------


def test_margin_prefers_a_tie_over_a_sure_item() -> None:
    scores = margin_scores(np.array([[0.9, 0.1], [0.5, 0.5]]))
    assert select_top(scores, 1).tolist() == [1]
    np.testing.assert_allclose(scores, [0.2, 1.0])


def test_score_functions_on_hand_written_rows() -> None:
    np.testing.assert_allclose(least_confident_scores(PROBA), [0.1, 0.5, 0.6, 2 / 3])
    np.testing.assert_allclose(margin_scores(PROBA), [0.2, 1.0, 0.9, 1.0])
    np.testing.assert_allclose(
        entropy_scores(PROBA),
        [-0.9 * np.log(0.9) - 0.1 * np.log(0.1), np.log(2), 1.0889, np.log(3)],
        atol=1e-4,
    )
    # Higher = pick first for every measure: the know-nothing row is never behind a sure one.
    for score in (least_confident_scores, margin_scores, entropy_scores):
        assert score(PROBA)[3] > score(PROBA)[0]


def test_scores_accept_float16_and_single_column() -> None:
    assert margin_scores(PROBA.astype(np.float16)).dtype == np.float64
    np.testing.assert_allclose(margin_scores(np.ones((3, 1))), 0.0)


def test_random_scores_are_reproducible() -> None:
    np.testing.assert_array_equal(random_scores(5, 42), random_scores(5, 42))
    assert random_scores(5, np.random.default_rng(0)).shape == (5,)


@pytest.mark.parametrize(
    ("ours", "theirs", "modal_sampler", "sign"),
    [
        (least_confident_scores, classifier_uncertainty, uncertainty_sampling, 1),
        (margin_scores, classifier_margin, margin_sampling, -1),
        (entropy_scores, classifier_entropy, entropy_sampling, 1),
    ],
)
def test_rankings_agree_with_modal(ours, theirs, modal_sampler, sign) -> None:
    X, y = make_blobs(500, n_features=5, centers=4, cluster_std=3.0, random_state=1)
    model = LogisticRegression(max_iter=500).fit(X[:100], y[:100])
    scores = ours(model.predict_proba(X))
    modal = theirs(model, X)
    # modAL's margin is p1 - p2 (pick the smallest); ours is 1 - margin (pick the largest).
    np.testing.assert_allclose(scores, modal if sign > 0 else 1 - modal, atol=1e-12)
    assert (np.argsort(-scores, kind="stable") == np.argsort(-sign * modal, kind="stable")).all()
    modal_idx, _ = modal_sampler(model, X, n_instances=10)
    assert set(select_top(scores, 10)) == set(modal_idx)


# --- selection -------------------------------------------------------------------------------


def test_select_top_breaks_ties_by_position() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.9, 0.5, 0.1])
    assert select_top(scores, 3).tolist() == [1, 3, 0]
    assert select_top(scores, 4).tolist() == [1, 3, 0, 2]
    assert select_top(np.zeros(10), 3).tolist() == [0, 1, 2]


def test_select_top_skips_ineligible_items() -> None:
    scores = np.array([-np.inf, 0.2, np.nan, 0.1])
    assert select_top(scores, 10).tolist() == [1, 3]
    assert select_top(scores, 0).dtype == np.int64
    assert select_top(np.array([]), 3).tolist() == []


def test_select_top_matches_a_full_sort_on_a_large_pool() -> None:
    scores = np.random.default_rng(0).integers(0, 1000, 200_000).astype(np.float64)
    expected = np.lexsort((np.arange(len(scores)), -scores))[:500]
    np.testing.assert_array_equal(select_top(scores, 500), expected)


# --- cold start and diversity ----------------------------------------------------------------


def test_typical_picks_cover_every_blob(blobs) -> None:
    X, y = blobs
    picks = typical_diverse_picks(X, 6, rng=0)
    assert sorted(y[picks]) == [0, 1, 2, 3, 4, 5]


def test_typical_picks_are_central(blobs) -> None:
    X, y = blobs
    X32 = X.astype(np.float32)
    for i in typical_diverse_picks(X, 6, rng=0):
        members = X32[y == y[i]]
        distance = np.linalg.norm(members - members.mean(axis=0), axis=1)
        # The pick sits among the most central tenth of its blob.
        assert np.linalg.norm(X32[i] - members.mean(axis=0)) <= np.quantile(distance, 0.1)


def test_typical_picks_go_to_blobs_without_labels(blobs) -> None:
    X, y = blobs
    labelled = np.array([np.flatnonzero(y == c)[0] for c in (0, 1, 2)])
    picks = typical_diverse_picks(X, 3, rng=0, already_labelled_idx=labelled)
    assert sorted(y[picks]) == [3, 4, 5]
    assert not set(picks) & set(labelled)


def test_typical_picks_on_a_tiny_pool() -> None:
    X = np.arange(10, dtype=np.float16).reshape(5, 2)
    assert sorted(typical_diverse_picks(X, 10, rng=0, already_labelled_idx=[1])) == [0, 2, 3, 4]
    assert len(typical_diverse_picks(X, 2, rng=0)) == 2
    assert typical_diverse_picks(X, 0, rng=0).tolist() == []
    assert typical_diverse_picks(X[:1], 3, rng=0).tolist() == [0]
    assert typical_diverse_picks(X[:0], 3, rng=0).tolist() == []
    # A constant pool (zero variance) still yields picks, without warnings.
    assert len(typical_diverse_picks(np.zeros((50, 8), np.float16), 3, rng=0)) == 3


def _scores_crowded_into_one_blob(y: np.ndarray) -> np.ndarray:
    """Top-30 scores: 20 in blob 0, 5 each in blobs 1 and 2; the rest much lower."""
    scores = np.random.default_rng(0).uniform(0.0, 0.5, len(y))
    for blob, count, level in ((0, 20, 0.95), (1, 5, 0.8), (2, 5, 0.8)):
        members = np.flatnonzero(y == blob)[:count]
        scores[members] = level + np.linspace(0, 0.01, count)
    return scores


def test_diverse_batch_spreads_across_blobs(blobs) -> None:
    X, y = blobs
    scores = _scores_crowded_into_one_blob(y)
    assert set(y[select_top(scores, 3)]) == {0}  # plain top-n: three near-duplicates
    picks = diverse_uncertain_picks(scores, X, 3, candidate_factor=10, rng=0)
    assert sorted(y[picks]) == [0, 1, 2]
    # Each pick is the most uncertain of its blob, and the batch is best first.
    assert picks[0] == np.argmax(scores)
    assert (np.diff(scores[picks]) <= 0).all()


def test_diverse_batch_degenerate_cases(blobs) -> None:
    X, _ = blobs
    scores = np.full(len(X), -np.inf)
    scores[[5, 7]] = [0.3, 0.4]
    assert diverse_uncertain_picks(scores, X, 3, rng=0).tolist() == [7, 5]
    same = np.zeros((50, 4), dtype=np.float16)  # all rows identical: one distinct cluster
    picks = diverse_uncertain_picks(np.linspace(0, 1, 50), same, 4, rng=0)
    assert picks.tolist() == [49, 48, 47, 46]


# --- policy and entry point ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_labels", "n_classes_labelled", "n_classes", "expected"),
    [
        (0, 0, 10, "typical"),
        (50, 1, 10, "typical"),  # one class cannot train a model
        (19, 10, 10, "typical"),  # fewer than two labels per class
        (20, 10, 10, "margin_diverse"),
        (20, 2, 10, "margin_diverse"),  # enough labels even if some classes are unseen
        (4, 2, 2, "margin_diverse"),
    ],
)
def test_choose_strategy(n_labels, n_classes_labelled, n_classes, expected) -> None:
    assert choose_strategy(n_labels, n_classes_labelled, n_classes) == expected
    assert expected in STRATEGIES


def _proba_for(X: np.ndarray, y: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    model = LogisticRegression(max_iter=500).fit(X[labelled].astype(np.float32), y[labelled])
    return model.predict_proba(X.astype(np.float32))


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_rank_pool_every_strategy(strategy, blobs) -> None:
    X, y = blobs
    labelled = np.zeros(len(X), dtype=bool)
    labelled[[np.flatnonzero(y == c)[0] for c in range(6)]] = True
    labelled[np.flatnonzero(y == 0)[:10]] = True
    picks = rank_pool(
        strategy,
        n=5,
        labelled_mask=labelled,
        proba=_proba_for(X, y, labelled),
        embeddings=X,
        n_classes=6,
        rng=0,
    )
    assert isinstance(picks, Picks)
    assert picks.strategy in STRATEGIES and picks.strategy != "auto"
    assert picks.indices.dtype == np.int64 and len(set(picks.indices)) == 5
    assert not labelled[picks.indices].any()
    assert picks.scores.shape == (len(X),) and picks.scores.dtype == np.float64
    assert np.isneginf(picks.scores[labelled]).all()
    assert np.isfinite(picks.scores[~labelled]).all()
    order = picks.queue_order()
    assert order[:5].tolist() == picks.indices.tolist()
    assert sorted(order) == np.flatnonzero(~labelled).tolist()


def test_rank_pool_auto_resolves_by_label_count(blobs) -> None:
    X, y = blobs
    few = np.zeros(len(X), dtype=bool)
    few[[0, 1]] = True
    cold = rank_pool("auto", n=4, labelled_mask=few, embeddings=X, rng=0, n_classes=6)
    assert cold.strategy == "typical"
    many = np.zeros(len(X), dtype=bool)
    many[:60] = True
    proba = _proba_for(X, y, many)
    warm = rank_pool("auto", n=4, labelled_mask=many, proba=proba, embeddings=X, rng=0)
    assert warm.strategy == "margin_diverse"
    assert rank_pool("auto", n=4, labelled_mask=many, proba=proba).strategy == "margin"
    assert rank_pool("auto", n=4, labelled_mask=few).strategy == "random"


def test_rank_pool_explains_bad_requests(blobs) -> None:
    X, _ = blobs
    mask = np.zeros(len(X), dtype=bool)
    with pytest.raises(ValueError, match="Unknown strategy 'best'; choose one of auto"):
        rank_pool("best", n=1, labelled_mask=mask)
    with pytest.raises(ValueError, match="needs a trained model"):
        rank_pool("margin", n=1, labelled_mask=mask, embeddings=X)
    with pytest.raises(ValueError, match="needs the embeddings"):
        rank_pool("typical", n=1, labelled_mask=mask)
    with pytest.raises(ValueError, match="one row per pool item"):
        rank_pool("random", n=1, labelled_mask=mask[:-1], embeddings=X)


def test_rank_pool_is_reproducible(blobs) -> None:
    X, _ = blobs
    mask = np.zeros(len(X), dtype=bool)
    first = rank_pool("typical", n=6, labelled_mask=mask, embeddings=X, rng=3)
    again = rank_pool("typical", n=6, labelled_mask=mask, embeddings=X, rng=3)
    np.testing.assert_array_equal(first.indices, again.indices)
    np.testing.assert_array_equal(first.scores, again.scores)


def test_large_float16_memmap_is_read_in_chunks(tmp_path, monkeypatch) -> None:
    """A memory-mapped float16 pool larger than one chunk; no float64 copy of it is made."""
    monkeypatch.setattr(clustering, "_CHUNK_ROWS", 1000)
    path = tmp_path / "pool.npy"
    X, y = make_blobs(5000, n_features=16, centers=4, random_state=2)
    np.save(path, X.astype(np.float16))
    pool = np.load(path, mmap_mode="r")
    picks = rank_pool("typical", n=4, labelled_mask=np.zeros(5000, bool), embeddings=pool, rng=0)
    assert sorted(y[picks.indices]) == [0, 1, 2, 3]
    assert np.isfinite(picks.scores).all()


def test_a_million_items_are_scored_and_the_best_picked() -> None:
    # How fast: bench/scoring.py (a speed claim belongs in bench/, with its baseline).
    proba = np.random.default_rng(0).dirichlet(np.ones(10), size=1_000_000)
    mask = np.zeros(len(proba), dtype=bool)
    picks = rank_pool("margin", n=100, labelled_mask=mask, proba=proba)
    assert len(picks.indices) == 100
    expected = np.argsort(-margin_scores(proba), kind="stable")[:100]
    np.testing.assert_array_equal(picks.indices, expected)
