"""The one resize from decoded pixels to a backbone's square input, as a Keras layer.

Resize policy: the image is scaled (aspect ratio kept) so that its shorter side is the
input size, and the central square is kept; bicubic, antialiased when shrinking.
Cropping rather than padding keeps the input looking like the ImageNet images the
backbone was trained on; the cost is that the ends of very elongated images are not seen.

The same layer, with the same settings, resizes each image in the app's embedding
pipeline (inside its ``tf.data`` map) and is the first layer of the exported ``.keras``
model, so the file computes what the app computed. It is a built-in Keras layer, so the
exported file loads in plain Keras with no custom objects. TensorFlow is imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from labeler.embeddings.preprocessing import decode_file, decode_image

if TYPE_CHECKING:
    import keras

RESIZE_LAYER = "resize"


def resize_layer(size: int) -> keras.layers.Layer:
    """A new layer taking float RGB images (one or a batch, any size) to ``size`` squares.

    Args:
        size: The backbone's input size.

    Returns:
        A ``keras.layers.Resizing`` layer named ``"resize"``; its output is float32 and not
        clipped (bicubic may overshoot 0..255 slightly, identically everywhere it runs).
    """
    import keras

    if size <= 0:
        raise ValueError(f"The image size must be positive, got {size}.")
    return keras.layers.Resizing(size, size, interpolation="bicubic", crop_to_aspect_ratio=True,
                                 antialias=True, name=RESIZE_LAYER)


def fit_square(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resize one decoded ``(height, width, 3)`` image with `resize_layer`.

    Returns:
        float32 array of shape ``(size, size, 3)``.
    """
    resized = resize_layer(size)(np.asarray(pixels, dtype=np.float32)[None])
    return np.asarray(resized, dtype=np.float32)[0]


def prepare_image(image: Image.Image, size: int) -> np.ndarray:
    """Decode and resize an image exactly as the embedding pipeline does.

    Args:
        image: A PIL image; it is loaded and turned upright in place (`decode_image`).
        size: Side of the output square in pixels.

    Returns:
        float32 array of shape ``(size, size, 3)``, RGB values in about 0..255.
    """
    return fit_square(decode_image(image), size)


def prepare_file(path: str, size: int) -> np.ndarray:
    """`prepare_image` of the file at ``path`` (raises on unreadable files)."""
    return fit_square(decode_file(path), size)
