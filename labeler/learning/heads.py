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

The Keras head with the same contract lives in :mod:`labeler.embeddings.dense_head`: only
``labeler.embeddings`` imports TensorFlow. A fitted :class:`LogisticHead` is saved as plain
arrays (:mod:`labeler.learning.head_store`), never pickled.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import LabelerError
from .blas import one_blas_thread
from .float16 import FLOAT16_SHIFT_SCALE, float16_bits_as_float32, float16_has_nonfinite

# Rows converted from the (float16, memory-mapped) pool to float32 at a time in predict:
# 16,384 x 1280 x 4 bytes is 80 MB, whereas the whole pool in float64 could be 10 GB.
_PREDICT_CHUNK_ROWS = 16_384
# Rows of a float16 pool converted at a time on LogisticHead's fast path: 512 x 1280 int32 is
# 2.5 MB, so the converted block is still in cache when the matrix product reads it.
_FLOAT16_BLOCK_ROWS = 512
# The scale is folded into the weights unless that could overflow float32 (max ~2**128).
_MAX_FOLDED_WEIGHT = 2.0**15
# Worker threads for a large float16 pool (numpy and BLAS release the GIL). Kept small: the
# work streams the pool through memory, so bandwidth, not cores, limits it beyond a few.
_MAX_PREDICT_THREADS = 4


class NotEnoughLabels(LabelerError, ValueError):
    """The labels cannot train a classifier yet; the message says what to label next.

    A :class:`~labeler.errors.LabelerError`, so the CLI and the web layer show the sentence;
    a ``ValueError``, as scikit-learn expects from ``fit`` on unusable targets.
    """


def check_training_labels(
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


def chunked_proba(
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


def _logistic_proba(logits: np.ndarray) -> np.ndarray:
    """Probabilities from float64 logits; a single column is the logit of ``classes_[1]``."""
    if logits.shape[1] == 1:  # two classes, as scikit-learn stores them
        return np.hstack([expit(-logits), expit(logits)])
    return softmax(logits, axis=1)


def _predict_threads(n_rows: int) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(_MAX_PREDICT_THREADS, cpus or 1, n_rows // _PREDICT_CHUNK_ROWS))


def _float16_logistic_proba(X: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """``LogisticHead`` probabilities of a float16 matrix, converted block by block.

    Numerically the same as converting each row to float32 and multiplying by the float32
    weights: the conversion is exact and scaling by a power of two loses nothing. Large
    inputs are split into one contiguous range of rows per worker thread.
    """
    coef = np.asarray(coef, dtype=np.float64)
    fold = bool(np.abs(coef).max(initial=0.0) < _MAX_FOLDED_WEIGHT)
    weights = np.ascontiguousarray(
        (coef * FLOAT16_SHIFT_SCALE if fold else coef).T, dtype=np.float32
    )
    n_rows, dim = X.shape
    proba = np.empty((n_rows, max(weights.shape[1], 2)), dtype=np.float64)
    failed = threading.Event()

    def score_rows(first: int, stop: int) -> None:
        buffer = np.empty((min(stop - first, _FLOAT16_BLOCK_ROWS), dim), dtype=np.int32)
        logits = np.empty((min(stop - first, _PREDICT_CHUNK_ROWS), weights.shape[1]), np.float32)
        for start in range(first, stop, _PREDICT_CHUNK_ROWS):
            chunk = X[start : min(start + _PREDICT_CHUNK_ROWS, stop)]
            for offset in range(0, len(chunk), _FLOAT16_BLOCK_ROWS):
                rows = chunk[offset : offset + _FLOAT16_BLOCK_ROWS]
                if failed.is_set():
                    return
                if float16_has_nonfinite(rows):
                    failed.set()
                    raise ValueError(
                        "Input X contains NaN or infinity; re-embed the affected images."
                    )
                block = float16_bits_as_float32(rows, buffer[: len(rows)])
                if not fold:
                    block *= np.float32(FLOAT16_SHIFT_SCALE)  # exact: a power of two
                np.matmul(block, weights, out=logits[offset : offset + len(rows)])
            chunk_logits = logits[: len(chunk)] + intercept  # float64, like the plain path
            proba[start : start + len(chunk)] = _logistic_proba(chunk_logits)

    n_threads = _predict_threads(n_rows)
    bounds = np.linspace(0, n_rows, n_threads + 1).astype(int)
    # One BLAS thread per call (process-wide, while this runs): the product of a 512-row block
    # with ~10 columns is too small to split, and OpenBLAS's own threads made it ~30x slower
    # on a busy 2-core machine.
    with one_blas_thread():
        if n_threads == 1:
            score_rows(0, n_rows)
        else:
            with ThreadPoolExecutor(n_threads, thread_name_prefix="predict") as pool:
                ranges = zip(bounds[:-1], bounds[1:], strict=True)
                futures = [pool.submit(score_rows, a, b) for a, b in ranges]
                for future in futures:
                    future.result()  # re-raises a worker's ValueError
    return proba


def pool_statistics(embeddings: np.ndarray, chunk_rows: int = 65_536
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation of a pool, streamed in float64 chunks.

    Works on a float16 memory-map of any size; features that never vary get scale 1 (as
    scikit-learn's StandardScaler does), so nothing is divided by zero.
    """
    n, dim = embeddings.shape
    if n == 0:
        return np.zeros(dim), np.ones(dim)
    total, squares = np.zeros(dim), np.zeros(dim)
    for start in range(0, n, chunk_rows):
        block = np.asarray(embeddings[start:start + chunk_rows], dtype=np.float64)
        total += block.sum(axis=0)
        squares += np.einsum("ij,ij->j", block, block)
    mean = total / n
    variance = np.maximum(squares / n - mean * mean, 0.0)
    scale = np.sqrt(variance)
    scale[scale < 1e-12] = 1.0
    return mean, scale


class LogisticHead(ClassifierMixin, BaseEstimator):
    """Standardise, then multinomial logistic regression: the default head.

    Strong L2 regularisation (``C=0.1``) suits the usual case of a few hundred labels and
    1280 features; it is the setting of the Fashion-MNIST (EfficientNet-Lite0) measurements
    behind the sampling policy in :mod:`labeler.learning.strategies`.

    Standardising with the statistics of the labelled rows alone is what a plain
    ``StandardScaler`` pipeline does, but with 10–20 labels those statistics are mostly
    noise: on Fashion-MNIST, 10 typical labels gave 0.33–0.41 accuracy scaled that way and
    0.57–0.63 scaled by the whole pool. The app always has the pool, so a retrain round
    passes its mean and scale (``pool_statistics``); without them the labelled rows are used.

    Args:
        C: Inverse regularisation strength of the logistic regression.
        max_iter: Iteration limit of the lbfgs solver.
        pool_mean: Per-feature mean of the whole (unlabelled) pool, or None.
        pool_scale: Per-feature standard deviation of the pool (zeros become 1), or None.

    Attributes:
        classes_: The labels seen in ``fit``, sorted; the order of ``predict_proba`` columns.
        n_features_in_: Embedding width seen in ``fit``.
        n_iter_: Solver iterations used; equal to ``max_iter`` means it did not converge.
        coef_: Weights on the raw embeddings, shape ``(1, dim)`` for two classes (the
            weights of ``classes_[1]``), else ``(n_classes, dim)``.
        intercept_: Biases, shape ``(1,)`` or ``(n_classes,)``.
    """

    def __init__(self, C: float = 0.1, max_iter: int = 1000, pool_mean: Any = None,
                 pool_scale: Any = None) -> None:
        self.C = C
        self.max_iter = max_iter
        self.pool_mean = pool_mean
        self.pool_scale = pool_scale

    def fit(self, X: Any, y: Any, sample_weight: Any = None,
            start_from: LogisticHead | None = None) -> LogisticHead:
        """Fit on labelled embeddings.

        Args:
            X: Embeddings, shape ``(n_labelled, dim)``.
            y: Labels (strings or integers), shape ``(n_labelled,)``.
            sample_weight: Optional weight per row (below 1 for pseudo-labels).
            start_from: A fitted head with the same classes and standardisation whose
                solution starts the solver (a refit on a few more rows converges in fewer
                iterations); the optimum reached is the same.

        Returns:
            self

        Raises:
            NotEnoughLabels: No labels, or labels of only one class.
        """
        X, y, classes = check_training_labels(self, X, y)
        if self.pool_mean is None or self.pool_scale is None:
            scaler = StandardScaler().fit(X, sample_weight=sample_weight)
            mean, scale = scaler.mean_, scaler.scale_
        else:
            mean = np.asarray(self.pool_mean, dtype=np.float64)
            scale = np.asarray(self.pool_scale, dtype=np.float64)
            if mean.shape != (X.shape[1],) or scale.shape != (X.shape[1],):
                raise ValueError(f"pool_mean and pool_scale need {X.shape[1]} values each.")
        model = LogisticRegression(C=self.C, max_iter=self.max_iter,
                                   warm_start=start_from is not None)
        if start_from is not None and np.array_equal(start_from.classes_, classes):
            # Back to the standardised space the solver works in (undo the folding below).
            model.coef_ = np.asarray(start_from.coef_) * scale
            model.intercept_ = np.asarray(start_from.intercept_) + start_from.coef_ @ mean
        model.fit((X - mean) / scale, y, sample_weight=sample_weight)
        # Fold the standardisation into the weights: w.((x - m) / s) + b = (w / s).x + b'.
        # Scoring the whole pool is then one float32 matrix product per chunk, instead of a
        # scaled copy of each chunk and a float32-by-float64 product that skips BLAS (4x
        # slower on a 1,000,000 x 1280 pool).
        self.coef_ = model.coef_ / scale
        self.intercept_ = model.intercept_ - self.coef_ @ mean
        self.classes_ = classes
        self.n_iter_ = model.n_iter_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per entry of ``classes_``.

        Args:
            X: Embeddings, shape ``(n_items, dim)``; may be a float16 memory-map of the
                whole pool, which is read in small blocks and never held in memory whole.

        Returns:
            Array of shape ``(n_items, len(classes_))``, rows summing to 1.

        Raises:
            ValueError: ``X`` has the wrong width, or contains NaN or infinity.
        """
        if isinstance(X, np.ndarray) and X.dtype == np.float16 and X.ndim == 2 and len(X):
            check_is_fitted(self)
            validate_data(self, X[:1], reset=False, dtype=np.float32)  # width, in sklearn's words
            return _float16_logistic_proba(X, self.coef_, self.intercept_)

        def proba_of_chunk(chunk: np.ndarray) -> np.ndarray:
            # Multiply in the chunk's own dtype (float32 for the pool) so BLAS is used.
            return _logistic_proba(chunk @ self.coef_.T.astype(chunk.dtype) + self.intercept_)

        return chunked_proba(self, X, proba_of_chunk)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each row, as an entry of ``classes_``."""
        proba = self.predict_proba(X)  # first, so an unfitted head raises NotFittedError
        return self.classes_[np.argmax(proba, axis=1)]
