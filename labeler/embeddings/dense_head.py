"""The Keras dense head: transfer learning's classification layer on the embeddings.

It has the estimator contract of :class:`labeler.learning.heads.LogisticHead` (and shares
its label checks), but trains a Keras softmax layer, so it lives here, in the one package
that imports TensorFlow, which it does lazily: importing this module loads no TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from labeler.learning.heads import check_training_labels, chunked_proba


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
        X, y, classes = check_training_labels(self, X, y)
        import keras  # lazy: importing this module loads no TensorFlow

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

        return chunked_proba(self, X, proba_of_chunk)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each row, as an entry of ``classes_``."""
        proba = self.predict_proba(X)  # first, so an unfitted head raises NotFittedError
        return self.classes_[np.argmax(proba, axis=1)]
