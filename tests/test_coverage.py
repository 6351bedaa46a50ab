"""Coverage cold starts and the configurable ``auto`` on hand-made clusters."""

from __future__ import annotations

import numpy as np
import pytest

from labeler.learning import coverage, query, strategies
from labeler.learning.query import AutoPolicy, rank_pool

PICKERS = {
    "probcover": lambda X, n, labelled=None: coverage.probcover_picks(X, n, 4, 0, labelled),
    "maxherding": lambda X, n, labelled=None: coverage.maxherding_picks(X, n, 0, labelled),
    "typiclust": lambda X, n, labelled=None: coverage.typiclust_picks(X, n, 0, labelled),
}


@pytest.fixture(scope="module")
def clusters() -> tuple[np.ndarray, np.ndarray]:
    """Four separated clusters of unequal size in 24-d."""
    rng = np.random.default_rng(0)
    sizes = [120, 80, 60, 40]
    centres = np.eye(24)[:4] * 8.0
    X = np.concatenate([c + rng.normal(0, 1.0, (m, 24)) for c, m in zip(centres, sizes,
                                                                           strict=True)])
    return X.astype(np.float32), np.repeat(np.arange(4), sizes)


@pytest.mark.parametrize("name", list(PICKERS))
def test_one_pick_per_cluster_covers_the_pool(clusters, name):
    X, y = clusters
    picks, scores = PICKERS[name](X, 4)
    assert len(picks) == 4 and len(set(picks.tolist())) == 4
    assert sorted(y[picks].tolist()) == [0, 1, 2, 3]
    assert scores.shape == (len(X),)


@pytest.mark.parametrize("name", list(PICKERS))
def test_labelled_clusters_count_as_covered(clusters, name):
    X, y = clusters
    labelled = np.array([0, 1, 120])  # clusters 0 and 1 already have labels
    picks, scores = PICKERS[name](X, 2, labelled)
    assert sorted(y[picks].tolist()) == [2, 3]
    assert not np.isin(picks, labelled).any()
    assert np.all(np.isneginf(scores[labelled]))


@pytest.mark.parametrize("name", list(PICKERS))
def test_a_pool_larger_than_the_sample_still_gives_valid_picks(clusters, name, monkeypatch):
    X, y = clusters
    monkeypatch.setattr(coverage, "_MAX_SAMPLE", 100)
    monkeypatch.setattr(coverage, "_MAX_CANDIDATES", 50)
    labelled = np.arange(0, 120, 3)  # cluster 0 labelled, mostly outside the sample
    picks, scores = PICKERS[name](X, 3, labelled)
    assert len(picks) == 3 and not np.isin(picks, labelled).any()
    assert 0 not in y[picks].tolist()  # the labelled cluster is covered
    # ... by every labelled row, also those the sample left out.
    space = coverage._Space(X, labelled, np.random.default_rng(0))
    assert len(space.Z_labelled) == len(labelled) > np.count_nonzero(space.is_labelled)
    assert np.isfinite(scores[np.setdiff1d(np.arange(len(X)), labelled)]).all()


def test_purity_radius_stays_inside_clusters(clusters):
    X, y = clusters
    Z = X / np.linalg.norm(X, axis=1, keepdims=True)
    radius = coverage.purity_radius(Z, 4)
    distances = np.linalg.norm(Z[:, None] - Z[None], axis=2)
    nearest_other = np.where(y[:, None] != y[None], distances, np.inf).min(axis=1)
    np.fill_diagonal(distances, np.inf)
    # 95 % of balls hold one cluster, and a ball holds more than its centre.
    assert np.mean(nearest_other > radius) == pytest.approx(0.95, abs=0.01)
    assert radius > np.median(distances.min(axis=1))


def test_typiclust_picks_the_most_typical_point_of_a_cluster():
    rng = np.random.default_rng(3)
    a = rng.normal(0, 1, (50, 8)) + np.eye(8)[0] * 10
    a[7] = np.eye(8)[0] * 10  # exactly at the centre: the densest point
    b = rng.normal(0, 1, (50, 8)) + np.eye(8)[1] * 10
    picks, _ = coverage.typiclust_picks(np.concatenate([a, b]).astype(np.float32), 2, 0)
    assert 7 in picks.tolist()


def test_today_policy_is_sampling_choose_strategy():
    for n_labels in (0, 5, 19, 20, 60):
        for labelled_classes in (0, 1, 2, 10):
            assert query.TODAY.choose(n_labels, labelled_classes, 10) == \
                strategies.choose_strategy(n_labels, labelled_classes, 10)


def test_auto_policy_switches_after_the_chosen_labels_per_class():
    policy = AutoPolicy(cold_start="maxherding", labels_per_class=5, then="margin")
    assert policy.choose(49, 10, 10) == "maxherding"
    assert policy.choose(50, 10, 10) == "margin"
    assert policy.choose(500, 1, 10) == "maxherding"  # one class: no model yet


def test_rank_pool_runs_coverage_strategies_and_a_configured_auto(clusters):
    X, y = clusters
    labelled = np.zeros(len(X), dtype=bool)
    labelled[[0, 120]] = True
    picks = rank_pool("auto", n=2, labelled_mask=labelled, embeddings=X, n_classes=4,
                      policy=AutoPolicy(cold_start="maxherding"), rng=0)
    assert picks.strategy == "maxherding"
    assert sorted(y[picks.indices].tolist()) == [2, 3]
    assert np.all(np.isneginf(picks.scores[labelled]))
    order = picks.queue_order()
    assert order[:2].tolist() == picks.indices.tolist() and len(order) == len(X) - 2


def test_rank_pool_delegates_sampling_strategies_unchanged(clusters):
    X, _ = clusters
    labelled = np.zeros(len(X), dtype=bool)
    ours = rank_pool("random", n=5, labelled_mask=labelled, embeddings=X, rng=4)
    theirs = strategies.rank_pool("random", n=5, labelled_mask=labelled, embeddings=X, rng=4)
    assert ours.indices.tolist() == theirs.indices.tolist()
    with pytest.raises(ValueError, match="Unknown strategy"):
        rank_pool("nope", n=1, labelled_mask=labelled)
    with pytest.raises(ValueError, match="needs the embeddings"):
        rank_pool("probcover", n=1, labelled_mask=labelled)
