"""Labelled image sets with EfficientNet-Lite0 embeddings, cached as ``<cache>/<name>.npz``.

Shared by the benches that need real embeddings. Each set is an ``.npz`` holding ``X``
(float16, one 1280-d row per image), ``y`` (int class index) and ``class_names``. A set not in
the cache is embedded once with the app's default backbone (through
:func:`labeler.learning.simulation.cached_embeddings`, which also caches per-image vectors),
then saved.

* ``demo3k``: the 3,000 Fashion-MNIST images the demo project ships (~1.5 min to embed on 2
  cores).
* ``fmnist20k``: the first 20,000 Fashion-MNIST training images (~7 min); needs the Debian
  package ``dataset-fashion-mnist``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
SETS = ("demo3k", "fmnist20k")


def _demo3k() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from labeler.demo import load_demo_images

    return load_demo_images()


def _fmnist20k() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from label_efficiency import read_idx  # the bench next to this one

    from labeler.demo import load_demo_images

    images = read_idx(FASHION_MNIST / "train-images-idx3-ubyte.gz")[:20_000]
    labels = read_idx(FASHION_MNIST / "train-labels-idx1-ubyte.gz")[:20_000]
    return images, labels.astype(np.int64), load_demo_images()[2]  # same ten class names


_IMAGES: dict[str, Callable[[], tuple[np.ndarray, np.ndarray, list[str]]]] = {
    "demo3k": _demo3k,
    "fmnist20k": _fmnist20k,
}


def load_set(name: str, cache: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(X float16 (n, 1280), y int64 (n,), class names)`` of a set, embedding it if needed.

    Args:
        name: One of :data:`SETS`.
        cache: Folder of the ``.npz`` files, the backbone weights and the vector cache.

    Returns:
        The embeddings, the true class index of each row and the class names.
    """
    path = cache / f"{name}.npz"
    if not path.exists():
        from labeler.embeddings.registry import known_identity, load_backbone
        from labeler.learning.simulation import cached_embeddings

        images, labels, names = _IMAGES[name]()
        folder = cache / f"{name}-images"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for index, pixels in enumerate(images):
            file = folder / f"{index:06d}.png"
            if not file.exists():
                Image.fromarray(pixels).convert("RGB").save(file)
            paths.append(file)
        print(f"embedding {len(paths)} images of {name} (once; cached in {cache})", flush=True)
        X = cached_embeddings(paths, cache, lambda: load_backbone("efficientnet-lite0", cache),
                              identity=known_identity("efficientnet-lite0"))
        np.savez(path, X=X.astype(np.float16), y=np.asarray(labels, np.int64),
                 class_names=np.asarray(names))
    with np.load(path) as data:
        return data["X"], data["y"].astype(np.int64), [str(n) for n in data["class_names"]]
