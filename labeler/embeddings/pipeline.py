"""The batched input pipeline from image files to embeddings (tf.data).

Files are decoded and resized by Pillow (``prepare_image``: EXIF orientation, every format
the importer accepts, 16-bit and transparent images handled) inside a parallel
``tf.data`` map, batched and prefetched, so the network never waits for decoding. A file
that cannot be read any more (deleted or damaged after import) is reported and skipped
instead of aborting the whole run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from labeler.embeddings.backbone import Backbone
from labeler.embeddings.images import prepare_image


@dataclass(frozen=True)
class EmbeddedBatch:
    """One batch's result: positions (indices into the input list) and their vectors."""

    positions: np.ndarray  # int64, indices of the files that were embedded
    vectors: np.ndarray  # float32 (len(positions), dim)
    failed: list[tuple[int, str]]  # (position, reason) of files that could not be read


def load_prepared(path: str, size: int) -> np.ndarray:
    """Decode one file to the backbone's input array (raises on unreadable files)."""
    with Image.open(path) as image:
        return prepare_image(image, size)


def embed_files(backbone: Backbone, paths: Sequence[str], batch_size: int = 32,
                parallel_calls: int | None = None) -> Iterator[EmbeddedBatch]:
    """Embed image files in input order, one batch at a time.

    Args:
        backbone: the loaded backbone.
        paths: image files on disk.
        batch_size: images per forward pass.
        parallel_calls: decoding threads (default: tf.data's autotuning).

    Yields:
        One `EmbeddedBatch` per batch of ``batch_size`` files (the last may be shorter).
    """
    import tensorflow as tf

    size = backbone.spec.input_size
    path_list = [str(p) for p in paths]
    blank = np.zeros((size, size, 3), dtype=np.uint8)

    def load(position: np.int64) -> tuple[np.ndarray, np.bool_, bytes]:
        try:
            return load_prepared(path_list[int(position)], size), np.bool_(True), b""
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the run
            return blank, np.bool_(False), f"{type(exc).__name__}: {exc}".encode()

    def tf_load(position: tf.Tensor):
        image, ok, error = tf.numpy_function(load, [position], [tf.uint8, tf.bool, tf.string],
                                             stateful=False)
        image.set_shape((size, size, 3))
        return position, image, ok, error

    dataset = (
        tf.data.Dataset.range(len(path_list))
        .map(tf_load, num_parallel_calls=parallel_calls or tf.data.AUTOTUNE,
             deterministic=True)
        .batch(batch_size)
        .prefetch(2)
    )
    for positions, images, ok, errors in dataset.as_numpy_iterator():
        good = ok.astype(bool)
        failed = [(int(p), e.decode(errors="replace"))
                  for p, e, k in zip(positions, errors, good, strict=True) if not k]
        if good.any():
            vectors = backbone.embed(images[good], batch_size=batch_size)
        else:
            vectors = np.empty((0, backbone.spec.dim), dtype=np.float32)
        yield EmbeddedBatch(positions[good].astype(np.int64), vectors, failed)
