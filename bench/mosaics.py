"""Multi-label images from real ones: 2×2 mosaics of Fashion-MNIST items, tagged with the
classes they contain, embedded with the app's default backbone (EfficientNet-Lite0).

The multi-label case of ``bench/label_efficiency.py``. Each mosaic places four test images
drawn at random (seeded) in a 56×56 grid; its tags are the distinct classes of the four, so
an image has 1 to 4 of 10 tags. PNGs, backbone weights and vectors live under the bench's
cache folder, so a second run embeds nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"]  # fmt: skip
TILES = 4  # a 2×2 grid


def mosaic_arrays(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` mosaics (uint8, ``(count, 56, 56)``) and their tags (``(count, 10)`` 0/1)."""
    from label_efficiency import read_idx  # the bench's IDX reader (bench/ is on sys.path)

    images = read_idx(FASHION_MNIST / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(FASHION_MNIST / "t10k-labels-idx1-ubyte.gz")
    picks = np.random.default_rng(seed).integers(0, len(images), size=(count, TILES))
    tiles = images[picks]  # (count, 4, 28, 28)
    top = np.concatenate([tiles[:, 0], tiles[:, 1]], axis=2)
    bottom = np.concatenate([tiles[:, 2], tiles[:, 3]], axis=2)
    mosaics = np.concatenate([top, bottom], axis=1)
    tags = np.zeros((count, len(CLASSES)), dtype=np.uint8)
    np.put_along_axis(tags, labels[picks].astype(np.int64), 1, axis=1)
    return mosaics, tags


def embedded_mosaics(count: int, cache: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(count, 1280)`` and tags ``(count, 10)`` of the mosaics, cached."""
    from labeler.embeddings.registry import known_identity, load_backbone
    from labeler.learning.simulation import cached_embeddings

    mosaics, tags = mosaic_arrays(count, seed)
    folder = cache / f"fashion-mosaics-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, pixels in enumerate(mosaics):
        path = folder / f"{index:05d}.png"
        if not path.exists():  # unchanged bytes keep the embedding cache valid
            Image.fromarray(pixels, mode="L").convert("RGB").save(path)
        paths.append(path)

    def progress(done: int, total: int) -> None:
        if done % 320 == 0 or done == total:
            print(f"  embedded {done}/{total}", flush=True)

    X = cached_embeddings(paths, cache, lambda: load_backbone("efficientnet-lite0", cache),
                          identity=known_identity("efficientnet-lite0"), progress=progress)
    return X, tags
