"""Rebuild ``fashion_mnist_demo.npz`` from Debian's ``dataset-fashion-mnist`` package.

    python -m labeler.demo_data.build [/usr/share/datasets/fashion-mnist]

Takes the first 300 test images of each of the 10 classes (3,000 in all) and stores them
compressed (28×28 uint8), so the demo ships real labelled images in ~1.5 MB. Not imported
at run time; kept to show where the demo data comes from.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
PER_CLASS = 300


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path) as handle:
        data = handle.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main(source: Path) -> None:
    images = read_idx(source / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(source / "t10k-labels-idx1-ubyte.gz")
    keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:PER_CLASS] for c in range(10)]))
    out = Path(__file__).with_name("fashion_mnist_demo.npz")
    np.savez_compressed(out, images=images[keep], labels=labels[keep],
                        class_names=np.array(CLASS_NAMES))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {len(keep)} images)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"))
