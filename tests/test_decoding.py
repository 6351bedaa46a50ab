"""The README's decoding for the exported model is the app's decoding, pixel for pixel.

Fast: no TensorFlow. The resize both share is tested with the real model in
tests/integration/test_export_parity.py.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image, ImageOps

from labeler.embeddings.preprocessing import decode_file
from tests import imagegen
from tests.exported_model import readme_snippet


def _readme_read_rgb():
    """The README snippet's ``read_rgb`` function, without loading any model."""
    match = re.search(r"^def read_rgb\(.*?(?=^\S)", readme_snippet(), re.DOTALL | re.MULTILINE)
    assert match, "README snippet: no read_rgb function"
    namespace = {"np": np, "Image": Image, "ImageOps": ImageOps}
    exec(match.group(0), namespace)  # our own README, not user data
    return namespace["read_rgb"]


@pytest.mark.parametrize("name", [n for n in imagegen.format_zoo() if n != "sixteen_bit.png"])
def test_readme_snippet_decodes_like_the_app(tmp_path, name):
    (path,) = imagegen.write_files(tmp_path, {name: imagegen.format_zoo()[name]})

    from_readme = _readme_read_rgb()(str(path))

    assert from_readme.dtype == np.float32
    np.testing.assert_array_equal(from_readme, decode_file(str(path)))


def test_the_app_decodes_exif_rotated_jpegs_upright(tmp_path):
    (path,) = imagegen.write_files(tmp_path, {"r.jpg": imagegen.exif_rotated_jpeg(300, 200)})

    assert decode_file(str(path)).shape == (300, 200, 3)  # stored 300 wide, shown 200 wide
