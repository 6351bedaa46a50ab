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

#: Shorter side, in pixels, below which a JPEG is never draft-decoded (twice the input
#: size of the default backbone, so the antialiased resize still has detail to filter).
JPEG_DRAFT_MIN_SIDE = 448


def with_preprocessing(weights_version: str) -> str:
    """A backbone's embedding version: its weights' version plus the preprocessing's."""
    return f"{weights_version}-p{PREPROCESSING_VERSION}"


def decode_image(image: Image.Image) -> np.ndarray:
    """The image's RGB pixels, upright, as a ``(height, width, 3)`` uint8 array.

    The EXIF orientation is applied, transparent images are composited onto white and
    16-bit greyscale is stretched to 8 bits (`labeler.imaging.to_rgb`): the decoding the
    README's snippet for the exported model repeats in plain Pillow.

    JPEGs are decoded at a reduced scale straight from the DCT (Pillow's draft mode), never
    below ``JPEG_DRAFT_MIN_SIDE`` on the shorter side: on a 12-megapixel photo that is a
    quarter of the pixels to decode and several times faster to embed. The README's snippet
    for the exported model makes the same ``draft`` call, so the file still sees exactly the
    app's pixels. Decoding at full size instead moves ImageNet probabilities by at most
    ~0.03 (measured on 12 photos of 1,000–5,000 px; 0.17 when drafting down to 224).

    Args:
        image: A PIL image; it is loaded (and turned upright) in place.

    Returns:
        The pixels, not resized.
    """
    if image.format == "JPEG" and image.mode in ("RGB", "L"):
        image.draft(image.mode, (JPEG_DRAFT_MIN_SIDE, JPEG_DRAFT_MIN_SIDE))
    ImageOps.exif_transpose(image, in_place=True)  # in place: no copy of a large photo
    return np.asarray(to_rgb(image), dtype=np.uint8)


def decode_file(path: str) -> np.ndarray:
    """`decode_image` of the file at ``path`` (raises on unreadable files)."""
    with Image.open(path) as image:
        return decode_image(image)
