"""The batched input pipeline from image files to embeddings (tf.data).

Files are decoded by Pillow (``decode_file``: EXIF orientation, every format the importer
accepts, 16-bit and transparent images handled) and resized by the exported model's own
resize layer (`labeler.embeddings.resize`), both inside a parallel ``tf.data`` map,
batched and prefetched, so the network never waits for decoding. A file that cannot be
read any more (deleted or damaged after import) is reported and skipped instead of
aborting the whole run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from labeler.embeddings.preprocessing import decode_file
from labeler.embeddings.resize import resize_layer


@dataclass(frozen=True)
class EmbeddedBatch:
    """One batch's result: positions (indices into the input list) and their vectors."""

    positions: np.ndarray  # int64, indices of the files that were embedded
    vectors: np.ndarray  # float32 (len(positions), dim)
    failed: list[tuple[int, str]]  # (position, reason) of files that could not be read


class FeatureExtractor(Protocol):
    """What the pipeline needs of a backbone (`labeler.embeddings.Backbone`, which calls it).

    Typed by its shape rather than by importing the ``Backbone`` class, so that the
    backbone module may use this one without an import cycle.
    """

    spec: Any  # input_size and dim are read

    def embed(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray: ...


def embed_files(backbone: FeatureExtractor, paths: Sequence[str], batch_size: int = 32,
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
    resize = resize_layer(size)

    def load(position: np.int64) -> tuple[np.ndarray, np.bool_, bytes]:
        try:
            return decode_file(path_list[int(position)]), np.bool_(True), b""
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the run
            return blank, np.bool_(False), f"{type(exc).__name__}: {exc}".encode()

    def tf_load(position: tf.Tensor):
        pixels, ok, error = tf.numpy_function(load, [position], [tf.uint8, tf.bool, tf.string],
                                              stateful=False)
        pixels.set_shape((None, None, 3))
        # One image at a time: files differ in size. The layer computes each image alone,
        # so this equals what the exported model computes on the same pixels.
        image = resize(tf.cast(pixels, tf.float32))
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
