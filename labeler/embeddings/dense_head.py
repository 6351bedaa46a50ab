"""The Keras dense head: transfer learning's classification layer on the embeddings.

It has the estimator contract of :class:`labeler.learning.heads.LogisticHead` (and shares
its label checks), but trains a Keras softmax layer, so it lives here, in the one package
that imports TensorFlow, which it does lazily: importing this module loads no TensorFlow.
A fitted head is saved as arrays (``dense_arrays``), its Keras model among them as the
bytes of a ``.keras`` file, and loaded back in Keras' safe mode: never a pickle.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
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
        """Fit on labelled embeddings; arguments, result and errors as ``LogisticHead.fit``
        (``NotEnoughLabels`` without labels of two classes)."""
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


#: The kind recorded in a saved dense head's file (see ``labeler.learning.head_store``).
KERAS_DENSE = "keras_dense"
_PARAMETERS = ("epochs", "batch_size", "learning_rate", "l2", "seed")


def dense_arrays(head: KerasDenseHead) -> dict[str, np.ndarray]:
    """A fitted KerasDenseHead as arrays: its model as ``.keras`` bytes, classes, parameters."""
    import keras

    with tempfile.TemporaryDirectory(prefix="labeler-head-") as folder:
        path = Path(folder) / "model.keras"
        with warnings.catch_warnings():
            # Keras 3.15's saver calls np.array() on TF variables, which NumPy 2 flags.
            warnings.filterwarnings(
                "ignore", "__array__ implementation doesn't accept", DeprecationWarning)
            keras.saving.save_model(head.model_, path)
        model_bytes = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    return {"keras_model": model_bytes, "classes_": head.classes_,
            "n_features_in_": np.array(head.n_features_in_),
            **{name: np.array(getattr(head, name)) for name in _PARAMETERS}}


def dense_from_arrays(arrays: dict[str, Any]) -> KerasDenseHead:
    """The KerasDenseHead that ``dense_arrays`` saved; its model is loaded in safe mode.

    Raises:
        ValueError: an array is missing, or the model bytes are not a loadable ``.keras``
            file of built-in layers (safe mode refuses Python code such as ``Lambda``).
    """
    import keras

    try:
        head = KerasDenseHead(**{name: arrays[name].item() for name in _PARAMETERS})
        model_bytes = np.asarray(arrays["keras_model"], dtype=np.uint8).tobytes()
        head.classes_ = np.asarray(arrays["classes_"])
        head.n_features_in_ = int(arrays["n_features_in_"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"a Keras dense head without its {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="labeler-head-") as folder:
        path = Path(folder) / "model.keras"
        path.write_bytes(model_bytes)
        try:
            head.model_ = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # a damaged or hostile zip raises many different errors
            raise ValueError(f"its Keras model cannot be loaded safely ({exc})") from exc
    return head
