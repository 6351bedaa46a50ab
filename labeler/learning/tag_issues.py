"""Suspected tag errors of a multi-label round, by cleanlab's multi-label API.

Pure functions on a tag round's out-of-fold probabilities
(:class:`~labeler.learning.tags.OutOfFoldTags`): no Flask, no database, no TensorFlow.
cleanlab's ``find_multilabel_issues_per_class`` treats each tag as a binary problem and
flags, per tag, the images whose given value (has it / has it not) the cross-validated heads
doubt; we return each flag as a :class:`SuspectedTagError`, most doubtful first.

The filter is ``low_self_confidence``, as for classes (:mod:`labeler.learning.label_issues`).
cleanlab refuses a tag whose labels all agree (it needs both values); such a tag has
nothing to contradict, so it is left out of the call and never flagged.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from cleanlab.multilabel_classification.filter import find_multilabel_issues_per_class

from .label_issues import CLEANLAB_LOCK, DEFAULT_FILTER, FILTERS
from .tag_heads import check_tag_matrix


@dataclass(frozen=True)
class SuspectedTagError:
    """One tag of one labelled image whose given value the model doubts.

    Attributes:
        index: Row of the image in the labelled set (the row of the probabilities).
        tag: Column of the tag, or its name when names were given.
        given: 1 if the annotator affirmed the tag, 0 if they left it off.
        given_probability: Out-of-fold probability of the given value (``p`` or ``1 - p``).
    """

    index: int
    tag: int | str
    given: int
    given_probability: float


def find_tag_issues(
    Y: np.ndarray,
    proba: np.ndarray,
    tags: Sequence[str] | None = None,
    filter_by: str = DEFAULT_FILTER,
) -> list[SuspectedTagError]:
    """Per-tag suspected label errors among labelled images.

    Args:
        Y: Given 0/1 tags, shape ``(n_labels, n_tags)``.
        proba: Out-of-fold tag probabilities of the same images, same shape.
        tags: Tag names, one per column, used in the results (default: column numbers).
        filter_by: One of cleanlab's filters (:data:`labeler.learning.label_issues.FILTERS`).

    Returns:
        The flags, lowest probability of the given value first.

    Raises:
        ValueError: Shapes that do not fit, probabilities outside [0, 1], or an unknown filter.
    """
    Y = check_tag_matrix(Y)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != Y.shape:
        raise ValueError(f"labels {Y.shape} and probabilities {proba.shape} differ in shape; "
                         "pass the out-of-fold probabilities of the labelled images.")
    if proba.size and (not np.isfinite(proba).all() or proba.min() < 0 or proba.max() > 1):
        raise ValueError("Tag probabilities must be finite and within [0, 1].")
    if filter_by not in FILTERS:
        raise ValueError(f"Unknown filter {filter_by!r}; choose one of {', '.join(FILTERS)}.")
    positives = Y.sum(axis=0)
    varying = np.flatnonzero((positives > 0) & (positives < len(Y)))
    if len(varying) == 0:
        return []
    sub = Y[:, varying]
    labels = [np.flatnonzero(row).tolist() for row in sub]
    with CLEANLAB_LOCK, warnings.catch_warnings():
        # cleanlab warns when a tag has too few examples to flag every issue: expected with
        # the few labels of early rounds, and not something the user can act on.
        warnings.simplefilter("ignore", UserWarning)
        flagged = find_multilabel_issues_per_class(labels=labels, pred_probs=proba[:, varying],
                                                   filter_by=filter_by, n_jobs=1)
    rows, columns = np.nonzero(np.asarray(flagged, dtype=bool))
    given = sub[rows, columns]
    p = proba[:, varying][rows, columns]
    given_probability = np.where(given == 1, p, 1.0 - p)
    names = list(tags) if tags is not None else None
    issues = [
        SuspectedTagError(int(i), names[varying[c]] if names else int(varying[c]), int(g),
                          float(q))
        for i, c, g, q in zip(rows, columns, given, given_probability, strict=True)
    ]
    return sorted(issues, key=lambda issue: (issue.given_probability, issue.index))
