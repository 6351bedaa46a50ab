"""A tiny, fast stand-in for the TensorFlow backbone, for unit tests.

It decodes the real files through the same ``decode_file`` as the real pipeline (then a
Pillow resize, so unit tests never import TensorFlow), and embeds each image as its
coarse colour layout, so similar images get similar vectors.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps

from labeler.embeddings.backbone import BackboneSpec
from labeler.embeddings.pipeline import EmbeddedBatch
from labeler.embeddings.preprocessing import decode_file

FAKE_BACKBONE = "fake-colour-layout"


def load_small(path: str, size: int) -> np.ndarray:
    """The file decoded as the pipeline decodes it, centre-cropped to ``size`` by Pillow."""
    pixels = Image.fromarray(decode_file(path))
    return np.asarray(ImageOps.fit(pixels, (size, size), Image.Resampling.BICUBIC))


@dataclass
class FakeBackbone:
    spec: BackboneSpec = field(default_factory=lambda: BackboneSpec(FAKE_BACKBONE, "1", 16, 48))
    calls: list[int] = field(default_factory=list)  # files embedded per call
    fail_after: int | None = None  # raise after this many batches (simulated crash)

    def embed(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        small = images.reshape(len(images), 4, 4, 4, 4, 3).mean(axis=(2, 4))
        return small.reshape(len(images), -1).astype(np.float32) / 255.0

    def embed_files(self, paths: Sequence[str], batch_size: int = 32) -> Iterator[EmbeddedBatch]:
        self.calls.append(len(paths))
        for batch_number, start in enumerate(range(0, len(paths), batch_size)):
            if self.fail_after is not None and batch_number >= self.fail_after:
                raise RuntimeError("simulated crash")
            positions, images, failed = [], [], []
            for position in range(start, min(start + batch_size, len(paths))):
                try:
                    images.append(load_small(paths[position], self.spec.input_size))
                    positions.append(position)
                except OSError as exc:
                    failed.append((position, str(exc)))
            vectors = self.embed(np.stack(images)) if images else np.empty((0, self.spec.dim))
            yield EmbeddedBatch(np.array(positions, dtype=np.int64), vectors, failed)


# A fixed random projection: 48 colour-layout features → 1280, EfficientNet-Lite0's width.
_WIDE_PROJECTION = np.random.default_rng(1280).normal(size=(48, 1280)).astype(np.float32)


@dataclass
class WideFakeBackbone(FakeBackbone):
    """The fake backbone at the real backbone's width (1280), for load and scale tests."""

    spec: BackboneSpec = field(
        default_factory=lambda: BackboneSpec("fake-wide-1280", "1", 16, 1280))

    def embed(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        # ReLU of a projection: non-negative, sparse-ish features like a CNN's pooled output.
        return np.maximum(super().embed(images, batch_size) @ _WIDE_PROJECTION, 0.0)
