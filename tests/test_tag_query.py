"""Query strategies for tags: closest-to-threshold, summed entropy, cold start, diversity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy

from labeler.learning.query import AutoPolicy
from labeler.learning.tag_query import (
    AUTO_THEN,
    rank_tag_pool,
    summed_entropy_scores,
    threshold_closeness_scores,
)


def test_closeness_ranks_the_image_with_a_tag_nearest_its_own_threshold_first():
    proba = np.array([[0.50, 0.99],   # tag 0 at 0.5 is far from its threshold 0.1
                      [0.12, 0.99],   # tag 0 just above 0.1: the most doubtful
                      [0.02, 0.60]])  # tag 1 at 0.6, threshold 0.7
    scores = threshold_closeness_scores(proba, np.array([0.1, 0.7]))
    assert scores.argmax() == 1
    assert scores[1] == pytest.approx(-abs(np.log(0.12 / 0.88) - np.log(0.1 / 0.9)))
    assert threshold_closeness_scores(np.array([[0.3]]), np.array([0.3]))[0] == 0.0


def test_summed_entropy_adds_each_tags_binary_entropy():
    proba = np.array([[0.5, 0.5, 0.0], [0.9, 0.2, 1.0]])
    expected = [sum(entropy([p, 1 - p]) for p in row) for row in proba]
    np.testing.assert_allclose(summed_entropy_scores(proba), expected)
    assert summed_entropy_scores(proba).argmax() == 0


@pytest.mark.parametrize("strategy", ["tag_threshold", "tag_entropy"])
def test_labelled_images_are_never_picked(strategy):
    proba = np.full((6, 2), 0.5)
    labelled = np.array([True, True, False, False, True, False])
    picks = rank_tag_pool(strategy, n=5, labelled_mask=labelled, proba=proba)
    assert sorted(picks.indices.tolist()) == [2, 3, 5]
    assert np.isneginf(picks.scores[labelled]).all()


def test_diverse_picks_take_one_doubtful_image_per_cluster():
    rng = np.random.default_rng(0)
    # Two tight groups of very doubtful images; plain top-2 would take both from group A.
    embeddings = np.vstack([rng.normal(0, 0.01, (5, 3)), rng.normal(5, 0.01, (5, 3))])
    proba = np.vstack([np.full((5, 2), 0.5), np.full((5, 2), 0.4)])
    labelled = np.zeros(10, dtype=bool)

    top = rank_tag_pool("tag_entropy", n=2, labelled_mask=labelled, proba=proba)
    diverse = rank_tag_pool("tag_entropy_diverse", n=2, labelled_mask=labelled, proba=proba,
                            embeddings=embeddings, rng=0)

    assert set(top.indices.tolist()) <= set(range(5))
    assert {int(i) // 5 for i in diverse.indices} == {0, 1}


def test_auto_cold_starts_then_switches_to_the_measured_tag_strategy():
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(80, 4))
    proba = rng.random((80, 3))
    labelled = np.zeros(80, dtype=bool)

    before_model = rank_tag_pool("auto", n=4, labelled_mask=labelled, embeddings=embeddings,
                                 n_tags=3, rng=0)
    labelled[:5] = True  # fewer than two labels per tag
    few = rank_tag_pool("auto", n=4, labelled_mask=labelled, proba=proba,
                        embeddings=embeddings, n_tags=3, rng=0)
    labelled[:6] = True
    enough = rank_tag_pool("auto", n=4, labelled_mask=labelled, proba=proba,
                           thresholds=np.full(3, 0.5), embeddings=embeddings, n_tags=3, rng=0)
    coverage = rank_tag_pool("auto", n=4, labelled_mask=np.zeros(80, bool),
                             embeddings=embeddings, n_tags=3, rng=0,
                             policy=AutoPolicy(cold_start="maxherding"))

    assert before_model.strategy == "typical" and few.strategy == "typical"
    assert enough.strategy == AUTO_THEN
    assert coverage.strategy == "maxherding"
    assert not labelled[enough.indices].any()


def test_a_model_strategy_without_a_model_says_to_cold_start():
    with pytest.raises(ValueError, match="use 'typical' or 'auto'"):
        rank_tag_pool("tag_entropy", n=2, labelled_mask=np.zeros(3, bool))
    with pytest.raises(ValueError, match="Unknown tag strategy"):
        rank_tag_pool("margin", n=2, labelled_mask=np.zeros(3, bool))
