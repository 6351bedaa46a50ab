"""The `Backbone` object the rest of the app embeds with. TensorFlow is imported lazily."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from labeler.embeddings.imagenet import top_k
from labeler.embeddings.pipeline import EmbeddedBatch, embed_files
from labeler.errors import LabelerError

if TYPE_CHECKING:
    import keras


class BackboneUnavailable(LabelerError):
    """A backbone cannot be loaded here; the message says what to do about it."""


class ImageNetHeadUnavailable(BackboneUnavailable):
    """The backbone has no ImageNet classifier (or its weights cannot be had)."""


@dataclass(frozen=True)
class BackboneSpec:
    """What identifies the embeddings a backbone produces.

    Attributes:
        name: Registry name, e.g. ``"efficientnet-lite0"``, ``"keras:ResNet50"`` or the
            absolute path of a ``.keras`` file.
        version: Changes whenever weights, architecture or preprocessing change, so
            embeddings stored under an older version are known to be stale.
        input_size: Side of the square RGB input in pixels.
        dim: Length of one embedding vector.
    """

    name: str
    version: str
    input_size: int
    dim: int


class Backbone:
    """A loaded feature extractor, optionally with an ImageNet classifier.

    Attributes:
        spec: Identity and shapes of this backbone.
        feature_model: ``keras.Model`` from float32 RGB 0..255 images ``(N, S, S, 3)`` to
            pooled features ``(N, dim)``. Preprocessing is inside the model, so it can be
            composed with resizing and a classifier head and saved as one ``.keras`` file.
    """

    def __init__(
        self,
        spec: BackboneSpec,
        feature_model: keras.Model,
        imagenet_model: Callable[[], keras.Model] | None = None,
    ) -> None:
        """Wrap a feature model.

        Args:
            spec: The backbone's identity.
            feature_model: See the class attributes.
            imagenet_model: Returns a model from the same images to ImageNet
                probabilities ``(N, 1000)``; called once, on the first `classify`. It may
                raise `ImageNetHeadUnavailable`. None when there is no ImageNet head.
        """
        self.spec = spec
        self.feature_model = feature_model
        self._imagenet_factory = imagenet_model
        self._imagenet_model: keras.Model | None = None

    def __repr__(self) -> str:
        return f"Backbone({self.spec!r})"

    def _check_images(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        size = self.spec.input_size
        if images.ndim != 4 or images.shape[1:] != (size, size, 3):
            raise ValueError(
                f"{self.spec.name} takes RGB images of shape (N, {size}, {size}, 3); got "
                f"{images.shape}. Use prepare_image(image, {size}) on each image first."
            )
        return images

    @staticmethod
    def _run(model: keras.Model, images: np.ndarray, batch_size: int, width: int) -> np.ndarray:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        out = np.empty((len(images), width), dtype=np.float32)
        for start in range(0, len(images), batch_size):
            # Convert per batch so a large uint8 stack is never held as float32 at once.
            batch = np.asarray(images[start : start + batch_size], dtype=np.float32)
            # predict_on_batch runs a compiled graph without predict()'s tf.data set-up:
            # measured ~40 img/s here against ~13 for predict() and ~15 for eager calls.
            out[start : start + len(batch)] = np.asarray(model.predict_on_batch(batch))
        return out

    def embed(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Compute one embedding per image.

        Args:
            images: ``(N, S, S, 3)`` RGB values in 0..255, uint8 or float, with ``S`` the
                spec's input size (see `prepare_image`).
            batch_size: Images per forward pass; bounds peak memory.

        Returns:
            float32 array of shape ``(N, dim)``.
        """
        images = self._check_images(images)
        return self._run(self.feature_model, images, batch_size, self.spec.dim)

    def embed_files(self, paths: Sequence[str], batch_size: int = 32) -> Iterator[EmbeddedBatch]:
        """Embed image files through the batched tf.data pipeline (see `pipeline`)."""
        return embed_files(self, paths, batch_size=batch_size)

    def classify(self, images: np.ndarray, top: int = 5) -> list[list[tuple[str, float]]]:
        """Name the most likely ImageNet classes of each image.

        Args:
            images: As for `embed`.
            top: How many classes to return per image.

        Returns:
            Per image, ``(class name, probability)`` pairs, most likely first.

        Raises:
            ImageNetHeadUnavailable: The backbone has no ImageNet classifier.
        """
        images = self._check_images(images)
        if self._imagenet_model is None:
            if self._imagenet_factory is None:
                raise ImageNetHeadUnavailable(
                    f"Backbone {self.spec.name} has no ImageNet classifier, so it cannot "
                    "name ImageNet classes. Use the default backbone 'efficientnet-lite0' "
                    "or a keras: application for that."
                )
            self._imagenet_model = self._imagenet_factory()
        probabilities = self._run(self._imagenet_model, images, 32, 1000)
        return top_k(probabilities, top)
