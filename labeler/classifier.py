"""Classifier heads trained on image embeddings, with scikit-learn's estimator contract.

A head maps embeddings (rows of the project's embedding matrix, often float16) to class
probabilities. Both heads here follow scikit-learn's rules: ``__init__`` only stores its
arguments, fitted attributes end in ``_``, ``fit`` returns ``self``, and the columns of
``predict_proba`` are in the order of ``classes_``.

Awkward label sets are explained states, not crashes deep inside scikit-learn:

* no labels, or labels of only one class: ``fit`` raises :class:`NotEnoughLabels`, a
  ``ValueError`` whose message says what to label next. We raise rather than return a
  constant model because a constant model would make every uncertainty score equal and
  silently turn active learning into index order; the retrain round catches the exception,
  records "not enough labels" and keeps cold-start sampling.
* a class defined in the project but with no labels yet is simply absent from ``classes_``
  (and so has no column); callers map columns through ``classes_``.
* labels may be strings or integers; ``classes_`` keeps their type, sorted.

TensorFlow: the project rule is that only ``labeler.embeddings`` imports TensorFlow.
:class:`KerasDenseHead` is the documented exception: it imports Keras lazily inside ``fit``,
so importing this module (and using :class:`LogisticHead`) never loads TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .errors import LabelerError

# Rows converted from the (float16, memory-mapped) pool to float32 at a time in predict:
# 16,384 x 1280 x 4 bytes is 80 MB, whereas the whole pool in float64 could be 10 GB.
_PREDICT_CHUNK_ROWS = 16_384


class NotEnoughLabels(LabelerError, ValueError):
    """The labels cannot train a classifier yet; the message says what to label next.

    A :class:`~labeler.errors.LabelerError`, so the CLI and the web layer show the sentence;
    a ``ValueError``, as scikit-learn expects from ``fit`` on unusable targets.
    """


def _check_training_labels(
    estimator: BaseEstimator, X: Any, y: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a training set; return ``(X, y, classes)`` or raise :class:`NotEnoughLabels`."""
    if y is not None and hasattr(y, "__len__") and len(y) == 0:
        raise NotEnoughLabels(
            "No images have labels yet; label images of at least two classes before training."
        )
    # Training sets are the labelled images only (small), so float64 is affordable here.
    X, y = validate_data(estimator, X, y, dtype=np.float64)
    check_classification_targets(y)
    classes = np.unique(y)
    if len(classes) < 2:
        raise NotEnoughLabels(
            f"Only one class ({classes.tolist()[0]!r}) has labels; label at least one image of "
            "another class before training."
        )
    return X, y, classes


def _chunked_proba(
    estimator: BaseEstimator, X: Any, proba_of_chunk: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Apply ``proba_of_chunk`` to float32 row chunks of ``X``, validating each chunk."""
    check_is_fitted(estimator)
    if not hasattr(X, "shape") or not hasattr(X, "__getitem__"):
        X = np.asarray(X)
    n_rows = X.shape[0] if len(X.shape) else 0
    parts = []
    # One chunk at a time, so the pool is never in memory whole; at least one chunk even for
    # empty or malformed X, so that validate_data reports the problem.
    for start in range(0, max(n_rows, 1), _PREDICT_CHUNK_ROWS):
        rows = X[start : start + _PREDICT_CHUNK_ROWS]
        chunk = validate_data(estimator, rows, reset=False, dtype=[np.float32, np.float64])
        parts.append(proba_of_chunk(chunk))
    return np.concatenate(parts)


class LogisticHead(ClassifierMixin, BaseEstimator):
    """Standardise, then multinomial logistic regression: the default head.

    Strong L2 regularisation (``C=0.1``) suits the usual case of a few hundred labels and
    1280 features; it is the setting of the Fashion-MNIST (EfficientNet-Lite0) measurements
    behind the sampling policy in :mod:`labeler.sampling`.

    Args:
        C: Inverse regularisation strength of the logistic regression.
        max_iter: Iteration limit of the lbfgs solver.

    Attributes:
        classes_: The labels seen in ``fit``, sorted; the order of ``predict_proba`` columns.
        n_features_in_: Embedding width seen in ``fit``.
        n_iter_: Solver iterations used; equal to ``max_iter`` means it did not converge.
        coef_: Weights on the raw embeddings, shape ``(1, dim)`` for two classes (the
            weights of ``classes_[1]``), else ``(n_classes, dim)``.
        intercept_: Biases, shape ``(1,)`` or ``(n_classes,)``.
    """

    def __init__(self, C: float = 0.1, max_iter: int = 1000) -> None:
        self.C = C
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any) -> LogisticHead:
        """Fit on labelled embeddings.

        Args:
            X: Embeddings, shape ``(n_labelled, dim)``.
            y: Labels (strings or integers), shape ``(n_labelled,)``.

        Returns:
            self

        Raises:
            NotEnoughLabels: No labels, or labels of only one class.
        """
        X, y, classes = _check_training_labels(self, X, y)
        scaler = StandardScaler().fit(X)
        model = LogisticRegression(C=self.C, max_iter=self.max_iter)
        model.fit(scaler.transform(X), y)
        # Fold the standardisation into the weights: w.((x - m) / s) + b = (w / s).x + b'.
        # Scoring the whole pool is then one float32 matrix product per chunk, instead of a
        # scaled copy of each chunk and a float32-by-float64 product that skips BLAS (4x
        # slower on a 1,000,000 x 1280 pool).
        self.coef_ = model.coef_ / scaler.scale_
        self.intercept_ = model.intercept_ - self.coef_ @ scaler.mean_
        self.classes_ = classes
        self.n_iter_ = model.n_iter_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per entry of ``classes_``.

        Args:
            X: Embeddings, shape ``(n_items, dim)``; may be a float16 memory-map of the
                whole pool, which is read in float32 chunks.

        Returns:
            Array of shape ``(n_items, len(classes_))``, rows summing to 1.
        """

        def proba_of_chunk(chunk: np.ndarray) -> np.ndarray:
            # Multiply in the chunk's own dtype (float32 for the pool) so BLAS is used.
            logits = chunk @ self.coef_.T.astype(chunk.dtype) + self.intercept_
            if logits.shape[1] == 1:  # two classes: the logit of classes_[1], as sklearn does
                return np.hstack([expit(-logits), expit(logits)])
            return softmax(logits, axis=1)

        return _chunked_proba(self, X, proba_of_chunk)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each row, as an entry of ``classes_``."""
        proba = self.predict_proba(X)  # first, so an unfitted head raises NotFittedError
        return self.classes_[np.argmax(proba, axis=1)]


class KerasDenseHead(ClassifierMixin, BaseEstimator):
    """A Keras softmax layer on normalised embeddings: transfer learning's classification layer.

    Same contract as :class:`LogisticHead`. Use it when the trained head should be exported
    as a ``.keras`` model (``model_``), which includes the input normalisation. Training is
    deterministic on CPU: weights start at zero (the problem is convex, so nothing is lost)
    and the example order is a fixed permutation drawn from ``seed``.

    Args:
        epochs: Passes over the labelled set.
        batch_size: Examples per gradient step.
        learning_rate: Adam learning rate.
        l2: L2 penalty on the dense kernel.
        seed: Seed of the example order.

    Attributes:
        classes_: The labels seen in ``fit``, sorted; the order of ``predict_proba`` columns.
        n_features_in_: Embedding width seen in ``fit``.
        model_: The fitted ``keras.Model`` (normalisation + dense softmax).
    """

    def __init__(
        self,
        epochs: int = 30,
        batch_size: int = 32,
        learning_rate: float = 1e-2,
        l2: float = 1e-4,
        seed: int = 0,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.l2 = l2
        self.seed = seed

    def fit(self, X: Any, y: Any) -> KerasDenseHead:
        """Fit on labelled embeddings.

        Args:
            X: Embeddings, shape ``(n_labelled, dim)``.
            y: Labels (strings or integers), shape ``(n_labelled,)``.

        Returns:
            self

        Raises:
            NotEnoughLabels: No labels, or labels of only one class.
        """
        X, y, classes = _check_training_labels(self, X, y)
        import keras  # lazy: see the module docstring

        X = X.astype(np.float32)
        normalise = keras.layers.Normalization()
        normalise.adapt(X)
        model = keras.Sequential(
            [
                keras.Input(shape=(X.shape[1],)),
                normalise,
                keras.layers.Dense(
                    len(classes),
                    activation="softmax",
                    kernel_initializer="zeros",
                    kernel_regularizer=keras.regularizers.L2(self.l2),
                ),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss="sparse_categorical_crossentropy",
        )
        order = np.random.default_rng(self.seed).permutation(len(X))
        targets = np.searchsorted(classes, y)
        model.fit(
            X[order],
            targets[order],
            epochs=self.epochs,
            batch_size=self.batch_size,
            shuffle=False,
            verbose=0,
        )
        self.model_ = model
        self.classes_ = classes
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per entry of ``classes_``.

        Args:
            X: Embeddings, shape ``(n_items, dim)``; read in float32 chunks.

        Returns:
            Array of shape ``(n_items, len(classes_))``, rows summing to 1.
        """

        def proba_of_chunk(chunk: np.ndarray) -> np.ndarray:
            proba = self.model_.predict(chunk.astype(np.float32), batch_size=4096, verbose=0)
            return np.asarray(proba, dtype=np.float64)

        return _chunked_proba(self, X, proba_of_chunk)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each row, as an entry of ``classes_``."""
        proba = self.predict_proba(X)  # first, so an unfitted head raises NotFittedError
        return self.classes_[np.argmax(proba, axis=1)]
