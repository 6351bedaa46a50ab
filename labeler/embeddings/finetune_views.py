"""The images a fine-tune trains on: decoded once, augmented, and passed through the frozen
trunk once, so that every epoch trains only the top of the network.

Fine-tuning keeps the lower stages of the backbone frozen (batch norm in inference mode),
so their output for a given input never changes: computing it once per *view* (the image
as the app sees it, plus a few random resized crops and flips of it) and training the top
stages on those cached activations gives augmentation without paying the trunk's forward
pass every epoch. TensorFlow/Keras are imported inside the functions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from labeler.embeddings.preprocessing import decode_file
from labeler.embeddings.resize import resize_layer

if TYPE_CHECKING:
    import keras

#: ``progress(done, total)`` after each batch of views through the trunk.
ViewProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class Augmentation:
    """Random resized crop and horizontal flip, as in ImageNet training.

    Attributes:
        min_area: Smallest share of the image a crop keeps.
        max_aspect: Crops are between ``1 / max_aspect`` and ``max_aspect`` wide for tall.
        flip: Whether half the crops are mirrored left to right.
    """

    min_area: float = 0.5
    max_aspect: float = 4 / 3
    flip: bool = True

    def crop_box(self, rng: np.random.Generator, height: int, width: int
                 ) -> tuple[int, int, int, int]:
        """(top, left, crop height, crop width) of one random crop inside the image."""
        for _ in range(10):  # torchvision's rejection sampling, then the whole image
            area = rng.uniform(self.min_area, 1.0) * height * width
            aspect = math.exp(rng.uniform(-math.log(self.max_aspect), math.log(self.max_aspect)))
            crop_w = int(round(math.sqrt(area * aspect)))
            crop_h = int(round(math.sqrt(area / aspect)))
            if 0 < crop_w <= width and 0 < crop_h <= height:
                return (int(rng.integers(0, height - crop_h + 1)),
                        int(rng.integers(0, width - crop_w + 1)), crop_h, crop_w)
        return 0, 0, height, width


@dataclass
class CachedViews:
    """The trunk's output for each view, float16, and which image each view shows.

    Attributes:
        activations: ``(n_views, h, w, c)`` trunk outputs.
        image_index: Index into the images of each view.
        is_original: True for the view that is the image as the app embeds it.
        failed: (image index, reason) of images that could not be decoded.
    """

    activations: np.ndarray
    image_index: np.ndarray
    is_original: np.ndarray
    failed: list[tuple[int, str]]

    def original_rows(self) -> dict[int, int]:
        """Image index to the row of its original view, for every decoded image."""
        return {int(self.image_index[row]): int(row) for row in np.flatnonzero(self.is_original)}

    def view_rows(self) -> dict[int, np.ndarray]:
        """Image index to the rows of all its views."""
        order = np.argsort(self.image_index, kind="stable")
        images, starts = np.unique(self.image_index[order], return_index=True)
        return {int(i): rows for i, rows in zip(images, np.split(order, starts[1:]), strict=True)}


def _views_of(pixels: np.ndarray, count: int, size: int, augmentation: Augmentation,
              rng: np.random.Generator, app_resize: keras.layers.Layer,
              stretch: keras.layers.Layer) -> list[np.ndarray]:
    """The original view (the app's resize) and ``count - 1`` augmented ones."""
    image = np.asarray(pixels, dtype=np.float32)
    views = [np.asarray(app_resize(image[None]))[0]]
    height, width = image.shape[:2]
    for _ in range(count - 1):
        top, left, crop_h, crop_w = augmentation.crop_box(rng, height, width)
        crop = image[top:top + crop_h, left:left + crop_w]
        if augmentation.flip and rng.random() < 0.5:
            crop = crop[:, ::-1]
        views.append(np.asarray(stretch(np.ascontiguousarray(crop)[None]))[0])
    return views


def cache_views(trunk: keras.Model, paths: Sequence[str], views_per_image: Sequence[int],
                augmentation: Augmentation, seed: int, batch_size: int = 32,
                progress: ViewProgress | None = None) -> CachedViews:
    """Decode each image, make its views and store the trunk's output for each.

    Args:
        trunk: The frozen lower part of the backbone, images ``(N, S, S, 3)`` in 0..255 to
            a feature map.
        paths: Image files.
        views_per_image: How many views of each image (1: the original only).
        augmentation: How the extra views are made.
        seed: Seed of the crops and flips.
        batch_size: Views per forward pass.
        progress: Called with (views done, views in all).

    Returns:
        The cached activations; an image that cannot be decoded has no views and is
        listed in ``failed``.
    """
    import keras

    size = int(trunk.inputs[0].shape[1])
    app_resize = resize_layer(size)
    stretch = keras.layers.Resizing(size, size, interpolation="bicubic", antialias=True)
    rng = np.random.default_rng(seed)
    total = int(sum(views_per_image))
    shape = tuple(int(d) for d in trunk.outputs[0].shape[1:])
    activations = np.empty((total,) + shape, dtype=np.float16)
    image_index = np.empty(total, dtype=np.int64)
    is_original = np.zeros(total, dtype=bool)
    failed: list[tuple[int, str]] = []
    pending: list[np.ndarray] = []
    done = 0

    def flush() -> None:
        nonlocal done
        batch = np.stack(pending)
        activations[done:done + len(batch)] = trunk.predict_on_batch(batch)
        done += len(batch)
        pending.clear()
        if progress is not None:
            progress(done, total)

    for index, (path, count) in enumerate(zip(paths, views_per_image, strict=True)):
        try:
            pixels = decode_file(str(path))
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the fine-tune
            failed.append((index, f"{type(exc).__name__}: {exc}"))
            continue
        start = done + len(pending)
        image_index[start:start + count] = index
        is_original[start] = True
        for view in _views_of(pixels, count, size, augmentation, rng, app_resize, stretch):
            pending.append(view)
            if len(pending) == batch_size:
                flush()
    if pending:
        flush()
    return CachedViews(activations[:done], image_index[:done], is_original[:done], failed)


def run_in_batches(model: keras.Model, inputs: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """``model`` on float16 ``inputs`` in float32 batches (bounded memory), as float32."""
    outputs = [np.asarray(model.predict_on_batch(inputs[i:i + batch_size].astype(np.float32)))
               for i in range(0, len(inputs), batch_size)]
    width = int(model.outputs[0].shape[-1])
    return np.concatenate(outputs) if outputs else np.empty((0, width), np.float32)


class Stopwatch:
    """Seconds spent per named phase (for the result, and for the bench)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started = time.perf_counter()

    def running(self) -> float:
        """Seconds since the current phase began."""
        return time.perf_counter() - self._started

    def lap(self, phase: str) -> None:
        """End the current phase, naming it ``phase``."""
        self.seconds[phase] = self.seconds.get(phase, 0.0) + self.running()
        self._started = time.perf_counter()
