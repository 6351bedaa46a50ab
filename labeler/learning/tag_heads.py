"""One-vs-rest logistic heads for multi-label (tag) projects, fitted in one solver call.

A tag project's labels are a 0/1 matrix ``Y`` of shape ``(n_labelled, n_tags)``: each image
affirms some tags and, by omission, denies the others. :class:`TagHeads` fits one binary
logistic regression per tag on the embeddings. The tags' objectives are independent, so
their sum is minimised at once: one L-BFGS run whose every step is a single matrix product
``X @ W`` for all tags, instead of ``n_tags`` separate scikit-learn fits. The optimum is the
one scikit-learn's ``LogisticRegression(C=C)`` reaches for each tag (L2 on the weights, not
on the bias), which the tests check.

A tag whose labels all agree (every labelled image has it, or none has) cannot train a
classifier; rather than fail the round it gets a constant probability, the share of labels
that have it, smoothed (``(k + 0.5) / (n + 1)``), so it is never exactly 0 or 1.

Standardisation is folded into the weights as in :class:`~labeler.learning.heads.LogisticHead`
(by the pool's statistics when given), so scoring the pool is one matrix product and the
head exports as one sigmoid ``Dense`` layer. Saved as plain arrays (``tag_arrays``), never
pickled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator

from .head_store import UnreadableHead
from .heads import NotEnoughLabels, chunked_proba

#: The kind recorded in a saved tag head's file (see :mod:`labeler.learning.head_store`).
TAG_LOGISTIC = "tag_logistic"
#: The decision threshold of a tag before any has been chosen by cross-validation.
DEFAULT_THRESHOLD = 0.5


def check_tag_matrix(Y: Any, n_rows: int | None = None) -> np.ndarray:
    """``Y`` as a uint8 0/1 matrix, or a ``ValueError`` that says what is wrong with it."""
    Y = np.asarray(Y)
    if Y.ndim != 2 or Y.shape[1] == 0:
        raise ValueError(f"Tag labels must be a 2-D 0/1 matrix (images x tags); got shape "
                         f"{Y.shape}.")
    if Y.size and not np.isin(Y, (0, 1)).all():
        raise ValueError("Tag labels must be 0 or 1 (1 = the image has the tag).")
    if n_rows is not None and len(Y) != n_rows:
        raise ValueError(f"{n_rows} embeddings but {len(Y)} rows of tags; pass one row of "
                         "tags per embedding.")
    return Y.astype(np.uint8)


def _objective(params: np.ndarray, X: np.ndarray, Y: np.ndarray, C: float,
               fitted: np.ndarray) -> tuple[float, np.ndarray]:
    """Summed L2-penalised logistic loss of the fitted tags, and its gradient."""
    dim = X.shape[1]
    weights = params.reshape(dim + 1, -1)
    W, b = weights[:dim], weights[dim]
    Z = X @ W + b
    # log(1 + e^z) - y z, the logistic loss with y in {0, 1}, computed without overflow.
    loss = C * float(np.sum(np.logaddexp(0.0, Z) - Y * Z)) + 0.5 * float(np.sum(W * W))
    residual = C * (expit(Z) - Y)
    grad = np.vstack([X.T @ residual + W, residual.sum(axis=0)])
    grad[:, ~fitted] = 0.0  # the constant tags' columns stay at their start
    return loss, grad.ravel()


class TagHeads(BaseEstimator):
    """One binary logistic head per tag on standardised embeddings.

    Args:
        C: Inverse L2 regularisation strength, as scikit-learn's ``LogisticRegression``.
        max_iter: Iteration limit of the joint L-BFGS run.
        pool_mean: Per-feature mean of the whole pool, or None (then the labelled rows').
        pool_scale: Per-feature standard deviation of the pool (zeros become 1), or None.

    Attributes:
        coef_: Weights on the raw embeddings, shape ``(n_tags, dim)`` (zero for a constant tag).
        intercept_: Biases, shape ``(n_tags,)``.
        constant_: True for each tag whose labels all agreed at fit time.
        tags_: What each column is (the ``tags`` given to ``fit``: names or label ids),
            ``0 .. n_tags - 1`` when none were given; saved with the head.
        thresholds_: Decision threshold per tag, :data:`DEFAULT_THRESHOLD` until a round sets
            them from out-of-fold predictions.
        n_features_in_: Embedding width seen in ``fit``.
        n_iter_: L-BFGS iterations used.
    """

    def __init__(self, C: float = 0.1, max_iter: int = 1000, pool_mean: Any = None,
                 pool_scale: Any = None) -> None:
        self.C = C
        self.max_iter = max_iter
        self.pool_mean = pool_mean
        self.pool_scale = pool_scale

    def fit(self, X: Any, Y: Any, tags: Any = None) -> TagHeads:
        """Fit every tag's head on labelled embeddings.

        Args:
            X: Embeddings, shape ``(n_labelled, dim)``.
            Y: 0/1 tags, shape ``(n_labelled, n_tags)``.
            tags: What each column of ``Y`` is (names or ids), kept as ``tags_``.

        Returns:
            self

        Raises:
            NotEnoughLabels: No labelled images.
            ValueError: ``Y`` is not a 0/1 matrix with one row per embedding.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (images x features); got shape {X.shape}.")
        Y = check_tag_matrix(Y, len(X)).astype(np.float64)
        if len(X) == 0:
            raise NotEnoughLabels("No images have tags yet; tag a few images before training.")
        if not np.isfinite(X).all():
            raise ValueError("Input X contains NaN or infinity; re-embed the affected images.")
        mean, scale = self._standardisation(X)
        Xs = (X - mean) / scale
        n, dim = Xs.shape
        positives = Y.sum(axis=0)
        fitted = (positives > 0) & (positives < n)
        start = np.zeros((dim + 1, Y.shape[1]))
        # Constant tags keep w = 0 and the bias of their smoothed rate; the others start at
        # the bias of theirs, which is closer to the optimum than 0.
        rate = (positives + 0.5) / (n + 1.0)
        start[dim] = np.log(rate) - np.log1p(-rate)
        result = minimize(_objective, start.ravel(), args=(Xs, Y, float(self.C), fitted),
                          jac=True, method="L-BFGS-B",
                          options={"maxiter": int(self.max_iter), "gtol": 1e-6})
        weights = result.x.reshape(dim + 1, -1)
        W, b = weights[:dim].T, weights[dim]
        # Fold the standardisation into the weights: w.((x - m) / s) + b = (w / s).x + b'.
        self.coef_ = W / scale
        self.intercept_ = b - self.coef_ @ mean
        self.constant_ = ~fitted
        self.tags_ = np.arange(Y.shape[1]) if tags is None else np.asarray(tags)
        if self.tags_.shape != (Y.shape[1],):
            raise ValueError(f"{len(self.tags_)} tags named for {Y.shape[1]} columns of labels.")
        self.thresholds_ = np.full(Y.shape[1], DEFAULT_THRESHOLD)
        self.n_features_in_ = dim
        self.n_iter_ = int(result.nit)
        return self

    def _standardisation(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.pool_mean is None or self.pool_scale is None:
            mean, scale = X.mean(axis=0), X.std(axis=0)
            scale[scale < 1e-12] = 1.0
            return mean, scale
        mean = np.asarray(self.pool_mean, dtype=np.float64)
        scale = np.asarray(self.pool_scale, dtype=np.float64)
        if mean.shape != (X.shape[1],) or scale.shape != (X.shape[1],):
            raise ValueError(f"pool_mean and pool_scale need {X.shape[1]} values each.")
        return mean, scale

    @property
    def n_tags(self) -> int:
        """Number of tags (columns of ``predict_proba``)."""
        return len(self.intercept_)

    def decision_function(self, X: Any) -> np.ndarray:
        """Each tag's logit, shape ``(n_items, n_tags)``; read in float32 chunks."""

        def logits_of_chunk(chunk: np.ndarray) -> np.ndarray:
            # Multiply in the chunk's own dtype (float32 for the pool) so BLAS is used.
            return chunk @ self.coef_.T.astype(chunk.dtype) + self.intercept_

        return chunked_proba(self, X, logits_of_chunk)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of each tag, shape ``(n_items, n_tags)``; rows need not sum to 1.

        Args:
            X: Embeddings; a float16 memory-map of the pool is read in small chunks.
        """
        return expit(self.decision_function(X).astype(np.float64))

    def predict(self, X: Any) -> np.ndarray:
        """The 0/1 decision per tag at ``thresholds_``, shape ``(n_items, n_tags)``, uint8."""
        return (self.predict_proba(X) >= self.thresholds_).astype(np.uint8)


def set_confidence(proba: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Probability that each predicted tag set is exactly right, the tags independent.

    The product over tags of ``p`` where the tag is predicted (``p >= threshold``) and
    ``1 - p`` where it is not: the multi-label counterpart of a class's confidence.

    Args:
        proba: Tag probabilities, shape ``(n_items, n_tags)``.
        thresholds: Decision threshold per tag, shape ``(n_tags,)``.

    Returns:
        float64 array of shape ``(n_items,)`` in ``[0, 1]``.
    """
    proba = np.asarray(proba, dtype=np.float64)
    chosen = np.where(proba >= np.asarray(thresholds, dtype=np.float64), proba, 1.0 - proba)
    # A sum of logs: a product of many small factors would underflow to 0 early.
    with np.errstate(divide="ignore"):
        return np.exp(np.log(chosen).sum(axis=1))


def tag_arrays(head: TagHeads) -> dict[str, np.ndarray]:
    """A fitted TagHeads as arrays: weights, biases, thresholds, constant tags, parameters."""
    arrays = {"coef_": head.coef_, "intercept_": head.intercept_,
              "thresholds_": head.thresholds_, "constant_": head.constant_, "tags_": head.tags_,
              "n_iter_": np.array(head.n_iter_), "n_features_in_": np.array(head.n_features_in_),
              "C": np.array(head.C), "max_iter": np.array(head.max_iter)}
    if head.pool_mean is not None and head.pool_scale is not None:
        arrays["pool_mean"] = np.asarray(head.pool_mean)
        arrays["pool_scale"] = np.asarray(head.pool_scale)
    return arrays


def tag_heads_from_arrays(arrays: dict[str, Any]) -> TagHeads:
    """The TagHeads that :func:`tag_arrays` saved, ready to ``predict_proba``.

    Raises:
        UnreadableHead: an array is missing or its shape does not fit the others.
    """
    try:
        head = TagHeads(C=float(arrays["C"]), max_iter=int(arrays["max_iter"]),
                        pool_mean=arrays.get("pool_mean"), pool_scale=arrays.get("pool_scale"))
        head.coef_ = np.asarray(arrays["coef_"], dtype=np.float64)
        head.intercept_ = np.asarray(arrays["intercept_"], dtype=np.float64)
        head.thresholds_ = np.asarray(arrays["thresholds_"], dtype=np.float64)
        head.constant_ = np.asarray(arrays["constant_"], dtype=bool)
        head.tags_ = np.asarray(arrays["tags_"])
        head.n_iter_ = int(arrays["n_iter_"])
        head.n_features_in_ = int(arrays["n_features_in_"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreadableHead(f"a tag head without its {exc}") from exc
    n_tags = len(head.intercept_)
    if (head.coef_.shape != (n_tags, head.n_features_in_) or head.intercept_.ndim != 1
            or head.thresholds_.shape != (n_tags,) or head.constant_.shape != (n_tags,)
            or head.tags_.shape != (n_tags,)):
        raise UnreadableHead(f"weights of shape {head.coef_.shape} do not fit {n_tags} tags "
                             f"of {head.n_features_in_} features")
    return head
