"""Label quality: cross-validated metrics and suspected label errors.

Pure functions on arrays, called by the retrain round (:mod:`labeler.training`): no Flask, no
database, no TensorFlow. (Near-duplicate images are :mod:`labeler.learning.duplicates`.)

* :func:`cross_validated_proba` gives every labelled item a prediction from a model that did
  not see its label (out-of-fold probabilities); :func:`round_metrics` turns them into the
  accuracy, per-class scores and confusion matrix the dashboard shows, and
  :func:`suspected_label_errors` into a list of labels worth a second look.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from .rng import RandomLike, seed_of

# --- label errors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SuspectedError:
    """A labelled item whose given label the cross-validated model doubts.

    Attributes:
        index: Position of the item in the labelled set (the row of ``cv_proba``).
        given_label: The label it was given (an entry of ``classes``, as a Python value).
        given_probability: Out-of-fold probability of the given label.
        suggested_label: The label the model confidently predicts instead.
        suggested_probability: Out-of-fold probability of the suggested label.
    """

    index: int
    given_label: Any
    given_probability: float
    suggested_label: Any
    suggested_probability: float


def _columns_of(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Column of each label in ``classes`` (any order); ValueError for unknown labels."""
    order = np.argsort(classes, kind="stable")
    pos = np.searchsorted(classes[order], labels).clip(0, max(len(classes) - 1, 0))
    cols = order[pos] if len(classes) else np.zeros(len(labels), dtype=np.int64)
    unknown = (classes[cols] != labels) if len(classes) else np.ones(len(labels), dtype=bool)
    if unknown.any():
        raise ValueError(
            f"Labels {np.unique(labels[unknown])[:5].tolist()} are not among the classes "
            f"{classes.tolist()}; pass the classes that label the probability columns."
        )
    return cols.astype(np.int64)


def _check_proba(cv_proba: Any, n_items: int, classes: np.ndarray) -> np.ndarray:
    proba = np.asarray(cv_proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape != (n_items, len(classes)):
        raise ValueError(
            f"cv_proba has shape {proba.shape}; expected ({n_items}, {len(classes)}): one row "
            "per labelled item and one column per class."
        )
    return proba


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
    proba = _check_proba(cv_proba, len(given), classes)
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1]; got {threshold}.")
    if len(given) == 0:
        return []
    rows = np.arange(len(given))
    cols = _columns_of(given, classes)
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


# --- cross-validation and metrics ------------------------------------------------------------


def cross_validated_proba(
    make_estimator: Callable[[], Any],
    X: Any,
    y: Any,
    max_folds: int = 5,
    rng: RandomLike = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Out-of-fold class probabilities of every labelled item (stratified k-fold).

    Uses ``k = min(max_folds, size of the smallest class)`` folds, so every fold holds out
    at least one item of each class. Each item's row comes from the one model that was not
    trained on it. A fold's model can in principle miss a class; its column is then 0.

    Args:
        make_estimator: Returns a fresh unfitted classifier with ``fit``, ``predict_proba``
            and ``classes_`` (e.g. :class:`~labeler.learning.heads.LogisticHead`).
        X: Embeddings of the labelled items, shape ``(n_labelled, dim)``.
        y: Their labels, shape ``(n_labelled,)``.
        max_folds: Most folds to use (at least 2).
        rng: Generator or seed for the fold assignment.

    Returns:
        ``(proba, classes)``: ``proba`` of shape ``(n_labelled, n_classes)`` whose columns are
        the sorted distinct labels ``classes``; or ``None`` when there are fewer than two
        classes or a class has fewer than two labels, which is too few to cross-validate (the
        caller shows that as the reason no accuracy is reported yet).

    Raises:
        ValueError: ``max_folds`` is below 2, or ``X`` and ``y`` differ in length.
    """
    if max_folds < 2:
        raise ValueError(f"max_folds must be at least 2; got {max_folds}.")
    y = np.asarray(y)
    if not isinstance(X, np.ndarray):
        X = np.asarray(X)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels.")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2 or counts.min() < 2:
        return None
    folds = StratifiedKFold(
        n_splits=int(min(max_folds, counts.min())),
        shuffle=True,
        random_state=seed_of(rng),
    )
    proba = np.zeros((len(y), len(classes)), dtype=np.float64)
    # Split on positions only: the fold assignment needs the labels, not the (maybe float16,
    # memory-mapped) embeddings, which scikit-learn would otherwise validate and copy.
    for train, test in folds.split(np.zeros((len(y), 1)), y):
        model = make_estimator().fit(X[train], y[train])
        columns = np.searchsorted(classes, model.classes_)
        proba[np.ix_(test, columns)] = model.predict_proba(X[test])
    return proba, classes


def round_metrics(y_true: Any, cv_proba: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    """Quality of a round's model from out-of-fold predictions, JSON-serialisable.

    The prediction of an item is its most probable class. Precision, recall and F1 of a class
    are 0 where they would divide by zero (no item predicted, or none true), as in
    scikit-learn with ``zero_division=0``.

    Args:
        y_true: Given labels, shape ``(n_items,)``.
        cv_proba: Out-of-fold probabilities, shape ``(n_items, n_classes)``.
        classes: The label of each column of ``cv_proba``.

    Returns:
        A dict with:

        * ``n``: items evaluated;
        * ``accuracy``: share of items whose prediction equals the given label;
        * ``macro_f1``: unweighted mean F1 over the classes with at least one item;
        * ``labels``: the classes as Python values, in column order;
        * ``per_class``: ``{str(label): {"precision", "recall", "f1", "support"}}``
          (JSON object keys are strings);
        * ``confusion``: counts as a list of lists, row = given label, column = predicted
          label, both in the order of ``labels``.

    Raises:
        ValueError: No items, shapes do not match, or a label is not in ``classes``.
    """
    classes = np.asarray(classes)
    y_true = np.asarray(y_true)
    proba = _check_proba(cv_proba, len(y_true), classes)
    if len(y_true) == 0:
        raise ValueError("No labelled items to measure; label some images first.")
    k = len(classes)
    true_cols = _columns_of(y_true, classes)
    pred_cols = proba.argmax(axis=1)
    confusion = np.bincount(true_cols * k + pred_cols, minlength=k * k).reshape(k, k)
    hits = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros(k), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros(k), where=total > 0)
    labels = classes.tolist()
    return {
        "n": int(len(y_true)),
        "accuracy": float(hits.sum() / len(y_true)),
        "macro_f1": float(f1[support > 0].mean()),
        "labels": labels,
        "per_class": {
            str(label): {
                "precision": float(precision[j]),
                "recall": float(recall[j]),
                "f1": float(f1[j]),
                "support": int(support[j]),
            }
            for j, label in enumerate(labels)
        },
        "confusion": confusion.tolist(),
    }
