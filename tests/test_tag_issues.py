"""Per-tag suspected label errors by cleanlab's multi-label API."""

from __future__ import annotations

import numpy as np
import pytest

from labeler.learning.tag_issues import find_tag_issues


def _confident(n=120, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, (n, 3))
    # Out-of-fold probabilities that mostly agree with the truth.
    proba = np.clip(np.where(truth == 1, 0.85, 0.15) + rng.normal(0, 0.05, truth.shape), 0, 1)
    return truth.astype(np.uint8), proba


def test_flipped_tags_are_flagged_on_the_right_tag():
    truth, proba = _confident()
    given = truth.copy()
    flips = [(3, 0), (17, 1), (40, 2), (41, 0)]
    for row, tag in flips:  # tags the model is sure of, given the other way
        proba[row, tag] = 0.97 if truth[row, tag] else 0.03
        given[row, tag] = 1 - given[row, tag]

    issues = find_tag_issues(given, proba, tags=["sea", "sky", "sunset"])

    found = {(issue.index, issue.tag) for issue in issues}
    assert {(row, ["sea", "sky", "sunset"][tag]) for row, tag in flips} <= found
    assert len(found) <= len(flips) + 2  # not a flood of false alarms
    first = issues[0]
    assert first.given == given[first.index, ["sea", "sky", "sunset"].index(first.tag)]
    probabilities = [issue.given_probability for issue in issues]
    assert probabilities == sorted(probabilities) and probabilities[0] < 0.3


def test_a_tag_whose_labels_all_agree_is_skipped_not_an_error():
    truth, proba = _confident()
    truth[:, 1] = 0  # cleanlab itself refuses a class that never occurs
    proba[5, 0] = 0.97 if truth[5, 0] else 0.03
    truth[5, 0] = 1 - truth[5, 0]
    issues = find_tag_issues(truth, proba)
    assert all(issue.tag != 1 for issue in issues)
    assert (5, 0) in {(issue.index, issue.tag) for issue in issues}
    assert find_tag_issues(np.zeros((4, 2)), np.full((4, 2), 0.5)) == []


def test_mismatched_inputs_are_refused_with_a_sentence():
    with pytest.raises(ValueError, match="out-of-fold probabilities"):
        find_tag_issues(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="within"):
        find_tag_issues(np.zeros((2, 2)), np.full((2, 2), 1.5))
