"""Per-tag decision thresholds and the quality figures of a multi-label round.

Pure numpy and scikit-learn. :func:`best_f1_thresholds` picks, for each tag, the threshold
that maximises F1 on out-of-fold probabilities; :func:`tag_metrics` gives what the dashboard
shows (per-tag precision, recall, F1, average precision, support and threshold; micro and
macro F1; mAP; label cardinality) as a JSON-ready dict.

A tag that no labelled image has (support 0) has no recall and no average precision; it is
left out of macro F1 and mAP (its per-tag figures are None) rather than counted as 0 or 1,
which would move the averages by a choice of convention.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import average_precision_score

from .tag_heads import DEFAULT_THRESHOLD, check_tag_matrix


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold on ``p`` that maximises F1 for the 0/1 labels ``y``.

    Candidate cuts fall between consecutive distinct probabilities; the threshold returned
    is the midpoint of the best cut, so an unseen probability on either side is decided as
    the labelled ones next to it were. Ties go to the higher threshold (fewer tags predicted).

    Returns:
        :data:`~labeler.learning.tag_heads.DEFAULT_THRESHOLD` when there are no positives
        (F1 is 0 at every threshold) or no items.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    n_pos = float(y.sum())
    if len(p) == 0 or n_pos == 0:
        return DEFAULT_THRESHOLD
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    # Predicting "tag" for the first k items (k = each end of a run of equal probabilities).
    ends = np.flatnonzero(np.r_[p_sorted[1:] != p_sorted[:-1], True])
    true_pos = np.cumsum(y_sorted)[ends]
    predicted = ends + 1.0
    f1 = 2.0 * true_pos / (predicted + n_pos)
    best = int(np.flatnonzero(f1 >= f1.max() - 1e-12)[0])
    lowest_in = p_sorted[ends[best]]
    highest_out = p_sorted[ends[best] + 1] if ends[best] + 1 < len(p_sorted) else 0.0
    return float((lowest_in + highest_out) / 2.0)


def best_f1_thresholds(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """:func:`best_f1_threshold` of each tag (column), shape ``(n_tags,)``."""
    Y = check_tag_matrix(Y)
    P = np.asarray(P, dtype=np.float64)
    return np.array([best_f1_threshold(Y[:, t], P[:, t]) for t in range(Y.shape[1])])


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator > 0 else None


def tag_metrics(Y: np.ndarray, P: np.ndarray, thresholds: np.ndarray,
                tags: Sequence[str] | None = None) -> dict:
    """The quality of tag probabilities ``P`` against the labels ``Y`` at ``thresholds``.

    Args:
        Y: 0/1 labels, shape ``(n_items, n_tags)``.
        P: Probabilities of the same items (out-of-fold for a round), same shape.
        thresholds: Decision threshold per tag.
        tags: Tag names, one per column (default ``"0"``, ``"1"``, ...).

    Returns:
        ``{"kind": "multi_label", "n_labels", "micro_f1", "macro_f1", "map", "cardinality",
        "per_tag": {name: {"precision", "recall", "f1", "average_precision", "threshold",
        "support"}}, "thresholds": {name: t}}``. Figures without a defined value are None
        (JSON null): precision of a tag never predicted, recall, F1 and AP of a tag without
        positives, averages over no tags.
    """
    Y = check_tag_matrix(Y)
    P = np.asarray(P, dtype=np.float64)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if P.shape != Y.shape or thresholds.shape != (Y.shape[1],):
        raise ValueError(f"labels {Y.shape}, probabilities {P.shape} and thresholds "
                         f"{thresholds.shape} do not fit together.")
    names = [str(t) for t in (tags if tags is not None else range(Y.shape[1]))]
    if len(names) != Y.shape[1]:
        raise ValueError(f"{len(names)} tag names for {Y.shape[1]} columns of labels.")
    decided = P >= thresholds
    truth = Y.astype(bool)
    true_pos = (decided & truth).sum(axis=0)
    predicted = decided.sum(axis=0)
    support = truth.sum(axis=0)
    per_tag, f1s, aps = {}, [], []
    for t, name in enumerate(names):
        f1 = _ratio(2.0 * true_pos[t], predicted[t] + support[t]) if support[t] else None
        ap = float(average_precision_score(truth[:, t], P[:, t])) if support[t] else None
        if support[t]:
            f1s.append(f1)
            aps.append(ap)
        per_tag[name] = {"precision": _ratio(true_pos[t], predicted[t]),
                         "recall": _ratio(true_pos[t], support[t]), "f1": f1,
                         "average_precision": ap, "threshold": float(thresholds[t]),
                         "support": int(support[t])}
    return {
        "kind": "multi_label",
        "n_labels": int(len(Y)),
        "micro_f1": _ratio(2.0 * true_pos.sum(), predicted.sum() + support.sum()),
        "macro_f1": float(np.mean(f1s)) if f1s else None,
        "map": float(np.mean(aps)) if aps else None,
        "cardinality": float(support.sum() / len(Y)) if len(Y) else None,
        "per_tag": per_tag,
        "thresholds": {name: float(t) for name, t in zip(names, thresholds, strict=True)},
    }
