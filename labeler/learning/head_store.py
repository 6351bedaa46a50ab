"""Fitted heads as plain arrays: what a round's head file holds. Never a pickle.

A head file is an ``.npz`` archive of numeric and string arrays only, with ``kind`` (which
head it is) and ``format`` (this layout's version) beside the head's own arrays. It is
read with ``allow_pickle=False``, so a file that smuggles a Python object in (an object
array is stored as a pickle) is refused instead of run: a data directory or a backup
written by someone else can hold wrong numbers, never code.

This module knows the :class:`~labeler.learning.heads.LogisticHead`'s arrays; the Keras
dense head stores its model as the bytes of a ``.keras`` file
(:mod:`labeler.embeddings.dense_head`), loaded in Keras' safe mode.
"""

from __future__ import annotations

import zipfile
from typing import IO, Any

import numpy as np

from .heads import LogisticHead

#: Version of the layout below; a newer one is refused with a sentence, not misread.
FORMAT_VERSION = 1
LOGISTIC = "logistic"


class UnreadableHead(ValueError):
    """A head file that is not plain data of a head kind this version knows."""


def write_head_arrays(handle: IO[bytes], kind: str, arrays: dict[str, np.ndarray]) -> None:
    """Write a head's arrays to ``handle`` (an open binary file) as an ``.npz`` archive.

    Raises:
        ValueError: an array holds Python objects, which only a pickle could store.
    """
    for name, array in arrays.items():
        if np.asarray(array).dtype.hasobject:
            raise ValueError(f"The head's {name} holds Python objects; a head stores numbers "
                             "and strings only.")
    np.savez(handle, kind=np.array(kind), format=np.array(FORMAT_VERSION), **arrays)


def read_head_arrays(source: str | IO[bytes]) -> tuple[str, dict[str, np.ndarray]]:
    """The kind and arrays of a head file (a path or an open binary file).

    Raises:
        UnreadableHead: not an ``.npz`` archive of plain arrays, a pickle inside, no kind,
            or a newer format.
    """
    try:
        with np.load(source, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # np.load raises ValueError for a pickle (allow_pickle=False) and for non-npz data.
        raise UnreadableHead(f"not a head saved as plain arrays ({exc})") from exc
    if not isinstance(arrays, dict) or "kind" not in arrays or "format" not in arrays:
        raise UnreadableHead("no head kind or format recorded in it")
    if int(arrays.pop("format")) > FORMAT_VERSION:
        raise UnreadableHead("saved by a newer labeler; upgrade labeler to read it")
    return str(arrays.pop("kind")), arrays


def logistic_arrays(head: LogisticHead) -> dict[str, np.ndarray]:
    """A fitted LogisticHead as arrays: weights, biases, class order, parameters."""
    arrays = {"coef_": head.coef_, "intercept_": head.intercept_, "classes_": head.classes_,
              "n_iter_": head.n_iter_, "n_features_in_": np.array(head.n_features_in_),
              "C": np.array(head.C), "max_iter": np.array(head.max_iter)}
    if head.pool_mean is not None and head.pool_scale is not None:
        arrays["pool_mean"] = np.asarray(head.pool_mean)
        arrays["pool_scale"] = np.asarray(head.pool_scale)
    return arrays


def logistic_from_arrays(arrays: dict[str, Any]) -> LogisticHead:
    """The LogisticHead that ``logistic_arrays`` saved, ready to ``predict_proba``.

    Raises:
        UnreadableHead: an array is missing or its shape does not fit the others.
    """
    try:
        head = LogisticHead(C=float(arrays["C"]), max_iter=int(arrays["max_iter"]),
                            pool_mean=arrays.get("pool_mean"), pool_scale=arrays.get("pool_scale"))
        head.coef_ = np.asarray(arrays["coef_"], dtype=np.float64)
        head.intercept_ = np.asarray(arrays["intercept_"], dtype=np.float64)
        head.classes_ = np.asarray(arrays["classes_"])
        head.n_iter_ = np.asarray(arrays["n_iter_"])
        head.n_features_in_ = int(arrays["n_features_in_"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreadableHead(f"a logistic head without its {exc}") from exc
    rows = 1 if len(head.classes_) == 2 else len(head.classes_)
    if head.coef_.shape != (rows, head.n_features_in_) or head.intercept_.shape != (rows,):
        raise UnreadableHead(f"weights of shape {head.coef_.shape} do not fit "
                             f"{len(head.classes_)} classes of {head.n_features_in_} features")
    return head
