"""Decode an image file to the RGB pixels a backbone's resize takes. No TensorFlow here.

Decoding is Pillow's job (EXIF orientation, every format the importer accepts); resizing
is not done here but by `labeler.embeddings.resize`, the same Keras layer the exported
model starts with, so the app and the exported file see the same pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from labeler.imaging import to_rgb

#: Changes whenever the preprocessing below or in `resize` changes what a backbone sees,
#: so every backbone's stored embeddings become stale (see ``BackboneSpec.version``).
#: 1: Pillow ``ImageOps.fit``; 2: the exported model's own Keras resize layer.
PREPROCESSING_VERSION = "2"


def with_preprocessing(weights_version: str) -> str:
    """A backbone's embedding version: its weights' version plus the preprocessing's."""
    return f"{weights_version}-p{PREPROCESSING_VERSION}"


def decode_image(image: Image.Image) -> np.ndarray:
    """The image's RGB pixels, upright, as a ``(height, width, 3)`` uint8 array.

    The EXIF orientation is applied, transparent images are composited onto white and
    16-bit greyscale is stretched to 8 bits (`labeler.imaging.to_rgb`): the decoding the
    README's snippet for the exported model repeats in plain Pillow.

    JPEGs are decoded at full size, as users decode what they feed the exported model. A
    reduced-scale (draft) decode is several times cheaper on large photos, but it moved
    ImageNet class probabilities by up to 0.007 at half scale (0.03 at quarter scale)
    against a full decode, far beyond the 0.001 the app and the file must agree within.

    Args:
        image: A PIL image; it is loaded (and turned upright) in place.

    Returns:
        The pixels, not resized.
    """
    ImageOps.exif_transpose(image, in_place=True)  # in place: no copy of a large photo
    return np.asarray(to_rgb(image), dtype=np.uint8)


def decode_file(path: str) -> np.ndarray:
    """`decode_image` of the file at ``path`` (raises on unreadable files)."""
    with Image.open(path) as image:
        return decode_image(image)
