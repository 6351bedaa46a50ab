"""Suspected label errors and per-class label quality, by cleanlab (confident learning).

Pure functions on a round's out-of-fold probabilities (see
:func:`labeler.learning.label_quality.cross_validated_proba`): no Flask, no database, no
TensorFlow. They replaced a hand-written confident-learning rule (issue 15; the rule is kept
as the baseline of ``bench/label_issues.py``) with the library users of Cleanlab know.

* :func:`find_label_issues` lists the labelled items cleanlab flags, most severe first.
* :func:`label_health` gives cleanlab's per-class label quality and its overall health score,
  for the dashboard.

The filter is ``low_self_confidence``: cleanlab estimates how many labels are wrong from its
confident joint and flags that many items, those with the lowest probability of their given
label. On Fashion-MNIST embeddings with 5 % of labels flipped (``bench/label_issues.py``) it
had the best precision and recall of cleanlab's filters at 300, 1,000 and 3,000 labels, and
beat the hand-written rule on both.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from cleanlab.count import estimate_joint
from cleanlab.dataset import overall_label_health_score, rank_classes_by_label_quality
from cleanlab.filter import find_label_issues as _cleanlab_find_label_issues

from .label_quality import check_proba, label_columns

# cleanlab's ways to decide which items are issues (``filter_by``) and to order them
# (``return_indices_ranked_by``), as its documentation names them.
FILTERS = (
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
)
RANKINGS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")
DEFAULT_FILTER = "low_self_confidence"
DEFAULT_RANKING = "self_confidence"

# With n_jobs=1, cleanlab's pruning passes its inputs through module globals of
# cleanlab.filter; two rounds in threads of one process would overwrite each other's. One
# call at a time (a round's call takes milliseconds).
_CLEANLAB_LOCK = threading.Lock()


@dataclass(frozen=True)
class SuspectedError:
    """A labelled item whose given label the cross-validated model doubts.

    Attributes:
        index: Position of the item in the labelled set (the row of ``cv_proba``).
        given_label: The label it was given (an entry of ``classes``, as a Python value).
        given_probability: Out-of-fold probability of the given label.
        suggested_label: The label the model finds most probable instead.
        suggested_probability: Out-of-fold probability of the suggested label.
    """

    index: int
    given_label: Any
    given_probability: float
    suggested_label: Any
    suggested_probability: float


@dataclass(frozen=True)
class ClassLabelQuality:
    """cleanlab's estimate of how well one class was labelled.

    Attributes:
        label: The class (an entry of ``classes``, as a Python value).
        given: Items given this label.
        label_issues: Estimated items given this label that belong to another class.
        label_noise: Estimated share of this label's items that are wrong,
            ``p(true != k | given = k)``.
        inverse_label_noise: Estimated share of the items truly of this class that were given
            another label, ``p(given != k | true = k)``.
        quality: ``1 - label_noise``; 1 means no label of this class looks wrong.
    """

    label: Any
    given: int
    label_issues: int
    label_noise: float
    inverse_label_noise: float
    quality: float


@dataclass(frozen=True)
class LabelHealth:
    """Per-class label quality and one overall score (cleanlab's ``health_summary`` numbers).

    Attributes:
        overall: Estimated share of correct labels overall, in ``[0, 1]``.
        per_class: One entry per class, in cleanlab's order: lowest quality first.
    """

    overall: float
    per_class: list[ClassLabelQuality]


def _prepared(
    cv_proba: Any, given: Any, classes: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(proba as float64, column of each item's label, classes)``, checked."""
    classes = np.asarray(classes)
    given = np.asarray(given)
    proba = check_proba(cv_proba, len(given), classes)
    return proba, label_columns(given, classes), classes


def _enough_to_judge(cols: np.ndarray, n_classes: int) -> bool:
    # cleanlab's confident joint needs two classes with labels; with fewer there is nothing
    # a label could be confused with.
    return len(cols) > 0 and n_classes >= 2 and len(np.unique(cols)) >= 2


def find_label_issues(
    cv_proba: np.ndarray,
    given: np.ndarray,
    classes: np.ndarray,
    *,
    filter_by: str = DEFAULT_FILTER,
    rank_by: str = DEFAULT_RANKING,
) -> list[SuspectedError]:
    """Labelled items whose given label cleanlab finds probably wrong, most severe first.

    Calls ``cleanlab.filter.find_label_issues`` with ``filter_by`` and
    ``return_indices_ranked_by=rank_by`` on one process (``n_jobs=1``: a web or job process
    must not fork). The suggested label of an item is its most probable other class.

    Args:
        cv_proba: Out-of-fold probabilities of the labelled items, shape
            ``(n_labelled, n_classes)``.
        given: The given label of each item, shape ``(n_labelled,)``.
        classes: The label of each column of ``cv_proba`` (any order).
        filter_by: One of :data:`FILTERS`.
        rank_by: One of :data:`RANKINGS`; the order of the result.

    Returns:
        The flagged items in cleanlab's ranked order (lowest label quality first); empty when
        fewer than two classes have labels.

    Raises:
        ValueError: Shapes do not match, a given label is not in ``classes``, or
            ``filter_by`` / ``rank_by`` is not one of cleanlab's.
    """
    if filter_by not in FILTERS:
        raise ValueError(f"Unknown filter {filter_by!r}; use one of {', '.join(FILTERS)}.")
    if rank_by not in RANKINGS:
        raise ValueError(f"Unknown ranking {rank_by!r}; use one of {', '.join(RANKINGS)}.")
    proba, cols, classes = _prepared(cv_proba, given, classes)
    if not _enough_to_judge(cols, len(classes)):
        return []
    with _CLEANLAB_LOCK, warnings.catch_warnings():
        # cleanlab warns about classes with very few labels; a round's early labels are few
        # by design, and the result is still the best estimate available.
        warnings.simplefilter("ignore")
        ranked = _cleanlab_find_label_issues(
            cols, proba, filter_by=filter_by, return_indices_ranked_by=rank_by, n_jobs=1
        )
    ranked = np.asarray(ranked, dtype=np.int64)
    others = proba[ranked].copy()
    others[np.arange(len(ranked)), cols[ranked]] = -np.inf
    suggested = others.argmax(axis=1)
    labels = classes.tolist()
    return [
        SuspectedError(
            index=int(row),
            given_label=labels[cols[row]],
            given_probability=float(proba[row, cols[row]]),
            suggested_label=labels[column],
            suggested_probability=float(proba[row, column]),
        )
        for row, column in zip(ranked.tolist(), suggested.tolist(), strict=True)
    ]


def label_health(cv_proba: np.ndarray, given: np.ndarray, classes: np.ndarray) -> LabelHealth:
    """cleanlab's per-class label quality and overall label health of a labelled set.

    Estimates the joint distribution of given and true labels once
    (``cleanlab.count.estimate_joint``) and derives from it
    ``cleanlab.dataset.rank_classes_by_label_quality`` and
    ``overall_label_health_score``, the numbers ``cleanlab.dataset.health_summary`` prints.

    Args:
        cv_proba: Out-of-fold probabilities, shape ``(n_labelled, n_classes)``.
        given: The given label of each item, shape ``(n_labelled,)``.
        classes: The label of each column of ``cv_proba``.

    Returns:
        The health; with fewer than two labelled classes every class has quality 1 and no
        issues (nothing to confuse a label with), and ``overall`` is 1.

    Raises:
        ValueError: Shapes do not match or a given label is not in ``classes``.
    """
    proba, cols, classes = _prepared(cv_proba, given, classes)
    labels = classes.tolist()
    counts = np.bincount(cols, minlength=len(classes))
    if not _enough_to_judge(cols, len(classes)):
        return LabelHealth(1.0, [ClassLabelQuality(label, int(counts[k]), 0, 0.0, 0.0, 1.0)
                                 for k, label in enumerate(labels)])
    with _CLEANLAB_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        joint = estimate_joint(labels=cols, pred_probs=proba)
        table = rank_classes_by_label_quality(joint=joint, num_examples=len(cols))
        overall = overall_label_health_score(joint=joint, num_examples=len(cols), verbose=False)
    per_class = [
        ClassLabelQuality(
            label=labels[int(row["Class Index"])],
            given=int(counts[int(row["Class Index"])]),
            label_issues=int(row["Label Issues"]),
            label_noise=float(row["Label Noise"]),
            inverse_label_noise=float(row["Inverse Label Noise"]),
            quality=float(row["Label Quality Score"]),
        )
        for row in table.to_dict("records")
    ]
    return LabelHealth(float(overall), per_class)
