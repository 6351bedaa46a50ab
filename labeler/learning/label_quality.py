"""Label quality: out-of-fold probabilities and the metrics of a round.

Pure functions on arrays, called by the retrain round (:mod:`labeler.training`): no Flask, no
database, no TensorFlow. (Near-duplicate images are :mod:`labeler.learning.duplicates`.)

* :func:`cross_validated_proba` gives every labelled item a prediction from a model that did
  not see its label (out-of-fold probabilities); :func:`round_metrics` turns them into the
  accuracy, per-class scores and confusion matrix the dashboard shows, and
  :mod:`labeler.learning.label_issues` (cleanlab) into the labels worth a second look.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from .rng import RandomLike, seed_of

# --- shared checks ---------------------------------------------------------------------------


def label_columns(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
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


def check_proba(cv_proba: Any, n_items: int, classes: np.ndarray) -> np.ndarray:
    """``cv_proba`` as float64, checked to have one row per item and one column per class."""
    proba = np.asarray(cv_proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape != (n_items, len(classes)):
        raise ValueError(
            f"cv_proba has shape {proba.shape}; expected ({n_items}, {len(classes)}): one row "
            "per labelled item and one column per class."
        )
    return proba


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
    proba = check_proba(cv_proba, len(y_true), classes)
    if len(y_true) == 0:
        raise ValueError("No labelled items to measure; label some images first.")
    k = len(classes)
    true_cols = label_columns(y_true, classes)
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
