"""Turn a PIL image into the square RGB array a backbone takes. No TensorFlow here."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from labeler.imaging import to_rgb


def prepare_image(image: Image.Image, size: int, *, draft: bool = True) -> np.ndarray:
    """Convert an image to the ``size`` × ``size`` RGB uint8 array a backbone embeds.

    Resize policy: the EXIF orientation is applied, the image is scaled (aspect ratio
    kept) so that its shorter side is ``size``, and the central ``size`` × ``size``
    square is kept (``PIL.ImageOps.fit`` with bicubic resampling, which low-pass filters
    when shrinking). Cropping rather than padding keeps the input looking like the
    ImageNet images the backbone was trained on; the cost is that the ends of very
    elongated images are not seen. Transparent images are composited onto white;
    16-bit greyscale is stretched to 8 bits.

    With ``draft`` (the default), a JPEG that has not been loaded yet is decoded directly
    at a reduced scale (JPEG draft mode, never smaller than ``size`` on either side),
    which makes large photos several times faster to prepare. That switches the passed
    image object to the reduced size, and an already loaded JPEG gives a slightly
    different array than a fresh one: pass freshly opened files so that a file always
    yields the same array.

    Args:
        image: Any PIL image. Only draft mode (see above) changes it.
        size: Side of the output square in pixels.
        draft: Allow reduced-scale JPEG decoding.

    Returns:
        Array of shape ``(size, size, 3)`` and dtype uint8.
    """
    if size <= 0:
        raise ValueError(f"The image size must be positive, got {size}.")
    if draft and image.format == "JPEG" and image.mode in ("RGB", "L"):
        image.draft(image.mode, (size, size))
    image = ImageOps.exif_transpose(image)
    image = to_rgb(image)
    fitted = ImageOps.fit(image, (size, size), method=Image.Resampling.BICUBIC)
    return np.asarray(fitted, dtype=np.uint8).copy()
