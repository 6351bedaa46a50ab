"""The hand-written confident-learning rule labeler used before cleanlab (issue 15).

Kept here, unchanged, as the same-run baseline of ``bench/label_issues.py``: rounds now
call :func:`labeler.learning.label_issues.find_label_issues` (cleanlab).
"""

from __future__ import annotations

import numpy as np

from labeler.learning.label_issues import SuspectedError
from labeler.learning.label_quality import check_proba, label_columns


def suspected_label_errors(
    cv_proba: np.ndarray,
    given: np.ndarray,
    classes: np.ndarray,
    threshold: float | None = None,
) -> list[SuspectedError]:
    """Flag labelled items whose given label is probably wrong (confident learning).

    The rule, from Northcutt et al., "Confident Learning" (JAIR 2021), made slightly stricter:

    1. Each class ``j`` gets a confidence threshold ``t_j``: the mean out-of-fold probability
       of ``j`` over the items labelled ``j`` (how sure the model usually is of that class).
       A fixed ``threshold`` replaces every ``t_j`` instead. A class nobody labelled has no
       threshold and is never suggested.
    2. An item labelled ``i`` is flagged when the probability of ``i`` is below ``t_i`` **and**
       some other class ``j`` reaches its own ``t_j``. The suggested label is the most probable
       such ``j`` (the class confident learning's "confident joint" counts the item under).

    Confident learning itself also flags items whose own class reaches ``t_i`` but another
    class is more probable still; requiring the given label to fall below its threshold keeps
    those borderline items off the list, so a lead reviews fewer false alarms.

    Args:
        cv_proba: Out-of-fold probabilities of the labelled items, shape
            ``(n_labelled, n_classes)`` (see :func:`cross_validated_proba`).
        given: The given label of each item, shape ``(n_labelled,)``.
        classes: The label of each column of ``cv_proba``.
        threshold: One probability threshold for every class, in ``(0, 1]``; ``None`` (the
            default) for the per-class thresholds above.

    Returns:
        The flagged items, most suspicious first: lowest probability of the given label,
        then highest probability of the suggested label, then position.

    Raises:
        ValueError: Shapes do not match, a given label is not in ``classes``, or the
            threshold is outside ``(0, 1]``.
    """
    classes = np.asarray(classes)
    given = np.asarray(given)
    proba = check_proba(cv_proba, len(given), classes)
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1]; got {threshold}.")
    if len(given) == 0:
        return []
    rows = np.arange(len(given))
    cols = label_columns(given, classes)
    self_confidence = proba[rows, cols]
    if threshold is None:
        counts = np.bincount(cols, minlength=len(classes))
        sums = np.bincount(cols, weights=self_confidence, minlength=len(classes))
        thresholds = np.full(len(classes), np.inf)
        np.divide(sums, counts, out=thresholds, where=counts > 0)
    else:
        thresholds = np.full(len(classes), float(threshold))
    confident = proba >= thresholds
    suggested = np.where(confident, proba, -np.inf).argmax(axis=1)
    flagged = np.flatnonzero(
        confident.any(axis=1) & (self_confidence < thresholds[cols]) & (suggested != cols)
    )
    suggested_p = proba[flagged, suggested[flagged]]
    order = np.lexsort((flagged, -suggested_p, self_confidence[flagged]))
    labels = classes.tolist()
    return [
        SuspectedError(
            index=int(flagged[k]),
            given_label=labels[cols[flagged[k]]],
            given_probability=float(self_confidence[flagged[k]]),
            suggested_label=labels[suggested[flagged[k]]],
            suggested_probability=float(suggested_p[k]),
        )
        for k in order
    ]


