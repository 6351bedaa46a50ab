"""Decoding and normalising images with Pillow: validation, RGB conversion, thumbnails.

Every file is judged by decoding it, never by its name. Pillow's decompression-bomb
limit (``Image.MAX_IMAGE_PIXELS``) is kept, and anything above it is refused outright
rather than merely warned about.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Truncated files must fail, not decode into grey half-images.
ImageFile.LOAD_TRUNCATED_IMAGES = False

_EXIF_ORIENTATION = 0x0112
_ORIENTATIONS_THAT_SWAP_AXES = {5, 6, 7, 8}

ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP", "TIFF"})


class InvalidImage(ValueError):
    """The bytes are not an image we accept; the message is the one-line reason."""


@dataclass(frozen=True)
class DecodedImage:
    """A validated image: its format, oriented size, and an RGB thumbnail as JPEG bytes."""

    format: str
    width: int
    height: int
    thumbnail_jpeg: bytes


def _check_pixels(width: int, height: int) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise InvalidImage(
            f"image is {width}×{height} = {width * height:,} pixels, above the "
            f"{limit:,}-pixel limit that protects against decompression bombs"
        )


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, compositing transparency onto white.

    16-bit and 32-bit greyscale are rescaled to their actual range first: Pillow's plain
    ``convert("RGB")`` clips them and turns most 16-bit photos white.
    """
    if image.mode in {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}:
        array = np.asarray(image, dtype=np.float32)
        low, high = float(array.min()), float(array.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        image = Image.fromarray(((array - low) * scale).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "PA"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def _thumbnail_box(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """The exact size a thumbnail with longest side ``longest`` will have."""
    width, height = size
    scale = min(1.0, longest / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def open_image(data: bytes) -> Image.Image:
    """Open (not yet decode) image bytes, refusing non-images and oversized headers."""
    if not data:
        raise InvalidImage("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        # Pillow refuses above twice its limit before the size is known to us; say so in the
        # same words as _check_pixels rather than Pillow's (a doubled limit, "DOS attack").
        limit = Image.MAX_IMAGE_PIXELS or 0
        raise InvalidImage(f"image header claims more than {2 * limit:,} pixels, far above "
                           f"the {limit:,}-pixel limit that protects against decompression "
                           "bombs") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("not an image Pillow can read (unknown or corrupt format)") from exc
    if image.format not in ACCEPTED_FORMATS:
        raise InvalidImage(f"image format {image.format} is not supported; "
                           f"use one of {', '.join(sorted(ACCEPTED_FORMATS))}")
    _check_pixels(*image.size)
    return image


def decode_and_thumbnail(data: bytes, thumbnail_size: int = 256) -> DecodedImage:
    """Validate ``data`` by decoding it fully and make its thumbnail.

    Raises:
        InvalidImage: with a one-line reason, for anything that is not a whole, sane image.
    """
    image = open_image(data)
    image_format = image.format or "?"
    width, height = image.size  # before draft() shrinks it
    if image.getexif().get(_EXIF_ORIENTATION, 1) in _ORIENTATIONS_THAT_SWAP_AXES:
        width, height = height, width  # recorded as displayed
    try:
        # JPEG "draft" decodes at 1/2, 1/4 or 1/8 scale straight from the DCT, still reading
        # every byte (so truncation is caught) at a fraction of the cost of a full decode.
        if image_format in {"JPEG", "MPO"}:
            image.draft("RGB", _thumbnail_box(image.size, thumbnail_size))
        image.load()
        oriented = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"corrupt or truncated image: {exc}") from exc
    thumb = to_rgb(oriented)
    # reducing_gap: a cheap box reduction first, LANCZOS only for the last factor of <= 2.
    thumb.thumbnail((thumbnail_size, thumbnail_size), Image.Resampling.LANCZOS,
                    reducing_gap=2.0)
    buffer = io.BytesIO()
    thumb.save(buffer, "JPEG", quality=85, optimize=False)
    return DecodedImage(image_format, width, height, buffer.getvalue())


def load_rgb(data: bytes) -> Image.Image:
    """Decode stored bytes to an oriented RGB image (for the backbone and exports)."""
    image = open_image(data)
    image.load()
    return to_rgb(ImageOps.exif_transpose(image))


DISPLAY_MAX_SIDE = 2048


def display_jpeg(data: bytes, max_side: int = DISPLAY_MAX_SIDE) -> bytes:
    """A browser-friendly JPEG of stored bytes (oriented RGB, longest side ``max_side``)."""
    image = load_rgb(data)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
