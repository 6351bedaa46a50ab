"""Semi-supervised heads on hand-made arrays: the pool graph, label spreading, pseudo-labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from labeler.learning.heads import LogisticHead, NotEnoughLabels
from labeler.learning.pool_graph import (
    PoolGraph,
    build_pool_graph,
    label_seeds,
    nearest_nodes,
    spread_labels,
)
from labeler.learning.pseudo_label import UNLABELLED, PseudoLabelHead, most_confident_per_class


def _clusters(n_per: int = 60, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three tight clusters in different directions (cosine neighbours stay inside)."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((3, dim))
    centres[0, 0] = centres[1, 1] = centres[2, 2] = 10.0
    X = np.concatenate([c + rng.normal(0, 1.0, (n_per, dim)) for c in centres])
    return X.astype(np.float32), np.repeat(np.arange(3), n_per)


def _expected_failures(estimator: PseudoLabelHead) -> dict[str, str]:
    # scikit-learn's semi-supervised convention, which this head follows, reads the label -1
    # as "unlabelled"; this one check trains on the classes {-1, 1}.
    return {"check_classifiers_classes": "the label -1 marks an unlabelled row"}


@parametrize_with_checks([PseudoLabelHead()], expected_failed_checks=_expected_failures)
def test_pseudo_label_head_follows_the_estimator_contract(estimator, check) -> None:
    check(estimator)


def test_nearest_nodes_are_exact_and_exclude_the_row_itself():
    Z = np.array([[1, 0], [0.8, 0.6], [0, 1], [-1, 0]], dtype=np.float32)
    idx, sims = nearest_nodes(Z, Z, 2, exclude_self=True)
    assert idx[0].tolist() == [1, 2]  # 0.8 then 0.0; never 0 itself (similarity 1)
    assert np.allclose(sims[0], [0.8, 0.0])
    assert idx[3].tolist()[0] in (1, 2) and 3 not in idx[3]


def test_graph_links_points_of_the_same_cluster():
    X, y = _clusters()
    graph = build_pool_graph(X, n_neighbours=5)
    assert graph.neighbours.shape == (len(X), 5) and graph.n_items == len(X)
    assert np.all(graph.neighbours != np.arange(len(X))[:, None])
    assert np.all(y[graph.neighbours] == y[:, None])
    assert np.all(graph.weights >= 0)


def test_a_large_pool_is_represented_by_a_sample_of_nodes():
    X, _ = _clusters()
    graph = build_pool_graph(X, n_neighbours=5, max_nodes=50, rng=1)
    assert len(graph.nodes) == 50 and np.all(np.diff(graph.nodes) > 0)
    assert graph.node_of(graph.nodes).tolist() == list(range(50))
    outside = np.setdiff1d(np.arange(len(X)), graph.nodes)[:3]
    assert graph.node_of(outside).tolist() == [-1, -1, -1]


def test_spreading_carries_one_label_per_cluster_to_the_whole_cluster():
    X, y = _clusters()
    graph = build_pool_graph(X, n_neighbours=5)
    seeds = label_seeds(graph, np.array([0, 60, 120]), np.array([0, 1, 2]), 3)
    F = spread_labels(graph, seeds)
    assert np.allclose(F.sum(axis=1), 1.0)
    assert np.array_equal(F.argmax(axis=1), y)


def test_seeds_are_balanced_across_classes_and_reach_past_the_sample():
    X, _ = _clusters()
    graph = build_pool_graph(X, n_neighbours=5, max_nodes=50, rng=1)
    outside = np.setdiff1d(np.arange(60), graph.nodes)[:2]  # two class-0 rows not in the graph
    inside = graph.nodes[graph.nodes >= 60][:1]  # one class-1 node
    positions = np.concatenate([outside, inside])
    seeds = label_seeds(graph, positions, np.array([0, 0, 1]), 2, X[positions])
    assert np.allclose(seeds.sum(axis=0), 1.0)  # each class weighs the same
    assert np.count_nonzero(seeds[:, 0]) >= 5  # the outside rows seeded their neighbours
    with pytest.raises(ValueError, match="embeddings"):
        label_seeds(graph, positions, np.array([0, 0, 1]), 2)


def test_unreached_nodes_get_the_uniform_distribution():
    X, _ = _clusters()
    graph = build_pool_graph(X, n_neighbours=5)
    F = spread_labels(graph, np.zeros((len(X), 3)))
    assert np.allclose(F, 1 / 3)


def test_most_confident_per_class_skips_ineligible_rows():
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])
    eligible = np.array([False, True, True, True, True])
    assert most_confident_per_class(proba, eligible, 1).tolist() == [1, 4]
    assert most_confident_per_class(proba, eligible, 5).tolist() == [1, 2, 4, 3]


def _hard_two_class_pool(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two clusters; each labelled example sits on the far side of its cluster from the
    other, so the logistic head's boundary from these two labels misplaces many points."""
    rng = np.random.default_rng(seed)
    dim = 32
    a = rng.normal(0, 1, (300, dim))
    b = rng.normal(0, 1, (300, dim))
    a[:, 0] -= 3.0
    b[:, 0] += 3.0
    a[:, 1] += 6.0  # clusters in different directions from the origin (cosine graph)
    b[:, 2] += 6.0
    X = np.concatenate([a, b]).astype(np.float32)
    y = np.repeat([0, 1], 300)
    # Label the point of A nearest to B on axis 0 and the point of B farthest from A.
    labelled = np.array([int(np.argmax(a[:, 0])), 300 + int(np.argmax(b[:, 0]))])
    return X, y, labelled


def test_pseudo_labels_fix_what_two_labels_alone_get_wrong():
    X, y, labelled = _hard_two_class_pool()
    masked = np.full(len(y), UNLABELLED)
    masked[labelled] = y[labelled]
    alone = LogisticHead().fit(X[labelled], y[labelled])
    head = PseudoLabelHead().fit(X, masked)
    accuracy_alone = np.mean(alone.predict(X) == y)
    accuracy = np.mean(head.predict(X) == y)
    assert head.n_pseudo_labels_ > 0
    assert accuracy >= 0.97 and accuracy > accuracy_alone + 0.05, (accuracy, accuracy_alone)


def test_held_out_rows_are_never_pseudo_labelled():
    X, y, labelled = _hard_two_class_pool()
    masked = np.full(len(y), UNLABELLED)
    masked[labelled] = y[labelled]
    free = PseudoLabelHead(per_class=50).fit(X, masked)
    held_out = free.pseudo_labelled_[:30]
    head = PseudoLabelHead(per_class=50).fit(X, masked, held_out=held_out)
    assert free.n_pseudo_labels_ == head.n_pseudo_labels_ == 100
    assert not np.isin(head.pseudo_labelled_, held_out).any()
    assert not np.isin(free.pseudo_labelled_, labelled).any()


def test_without_passes_it_is_the_logistic_head_and_saves_as_arrays():
    X, y, labelled = _hard_two_class_pool()
    masked = np.full(len(y), UNLABELLED)
    masked[labelled] = y[labelled]
    plain = PseudoLabelHead(passes=0).fit(X, masked)
    from labeler.learning.heads import pool_statistics

    mean, scale = pool_statistics(X)
    logistic = LogisticHead(pool_mean=mean, pool_scale=scale).fit(X[labelled], y[labelled])
    assert plain.n_pseudo_labels_ == 0
    assert np.allclose(plain.coef_, logistic.coef_) and np.allclose(plain.intercept_,
                                                                    logistic.intercept_)
    assert isinstance(plain, LogisticHead)  # predicted, saved and exported as a linear head


def test_one_class_or_no_label_is_not_enough():
    X, y, _ = _hard_two_class_pool()
    masked = np.full(len(y), UNLABELLED)
    with pytest.raises(NotEnoughLabels):
        PseudoLabelHead().fit(X, masked)
    masked[:5] = 0
    with pytest.raises(NotEnoughLabels):
        PseudoLabelHead().fit(X, masked)


def test_a_graph_of_another_pool_is_refused():
    X, y, labelled = _hard_two_class_pool()
    masked = np.full(len(y), UNLABELLED)
    masked[labelled] = y[labelled]
    graph = build_pool_graph(X[:100])
    with pytest.raises(ValueError, match="build the graph again"):
        PseudoLabelHead(graph=graph).fit(X, masked)


def test_a_graph_comes_back_from_its_arrays_and_refuses_arrays_that_do_not_fit():
    X, _ = _clusters()
    graph = build_pool_graph(X, n_neighbours=5)
    back = PoolGraph.from_arrays(graph.arrays())
    for name, array in graph.arrays().items():
        np.testing.assert_array_equal(back.arrays()[name], array)
    broken = graph.arrays()
    broken["neighbours"] = broken["neighbours"] + len(graph.nodes)  # points past the nodes
    with pytest.raises(ValueError, match="do not fit"):
        PoolGraph.from_arrays(broken)
    del broken["weights"]
    with pytest.raises(ValueError, match="weights"):
        PoolGraph.from_arrays(broken)


def test_a_refit_started_from_a_head_reaches_the_same_head_in_fewer_iterations():
    X, y = _clusters(dim=32)
    rng = np.random.default_rng(1)
    first = LogisticHead(C=1.0).fit(X[::3], y[::3])
    weights = np.where(rng.random(len(y)) < 0.5, 1.0, 0.3)
    cold = LogisticHead(C=1.0).fit(X, y, sample_weight=weights)
    warm = LogisticHead(C=1.0).fit(X, y, sample_weight=weights, start_from=first)
    np.testing.assert_allclose(warm.predict_proba(X), cold.predict_proba(X), atol=1e-3)
    assert warm.n_iter_.max() < cold.n_iter_.max()
