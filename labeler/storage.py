"""Where the data lives: the data directory, and the content-addressed image store in it.

Every file the app keeps (images, thumbnails, vectors, round models, map caches, upload
spools) lives under one root, ``data_root()`` (LABELER_HOME), and modules ask this module
for it instead of reading the setting themselves. Several web and worker machines share
their files by mounting the same POSIX file system there (docs/scaling.md): names are
content hashes or ids, writes are atomic renames or flock-guarded appends.

The image store is the only code that knows where stored images live. A file's name is
the SHA-256 of its bytes, so the same bytes imported twice (or into two projects) are
stored once, and no name supplied by a user ever reaches the file system.

Layout under the data directory::

    images/ab/abcdef...<64 hex>.<ext>     original bytes, exactly as imported
    thumbs/ab/abcdef...<64 hex>.jpg       RGB JPEG, longest side THUMBNAIL_SIZE
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def data_root() -> Path:
    """The data directory of the current app (LABELER_HOME)."""
    from flask import current_app

    return Path(current_app.config["HOME"])


def blob_store() -> BlobStore:
    """The image store of the current app."""
    return BlobStore(data_root())


_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# Pillow format name -> file extension of the stored original.
EXTENSIONS = {
    "JPEG": "jpg", "MPO": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp",
    "TIFF": "tif",
}

MEDIA_TYPES = {
    "jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
    "bmp": "image/bmp", "tif": "image/tiff",
}


def file_sha256(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks (large files never sit in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def extension_for(image_format: str) -> str:
    """File extension used to store an image of Pillow format ``image_format``."""
    return EXTENSIONS.get(image_format.upper(), image_format.lower())


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """Open ``path`` for writing so readers see either no file or the whole file, never a part.

    Writes go to a temporary file beside ``path`` that replaces it on success; a crash or an
    exception leaves at most a stray temporary file (removed on exceptions), never a
    truncated ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _atomic_write(path: Path, data: bytes) -> None:
    with atomic_writer(path) as handle:
        handle.write(data)


class BlobStore:
    """Stored originals and thumbnails under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, kind: str, sha256: str, extension: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / kind / sha256[:2] / f"{sha256}.{extension}"

    def image_path(self, sha256: str, image_format: str) -> Path:
        """Path of the stored original of an image."""
        return self._path("images", sha256, extension_for(image_format))

    def thumbnail_path(self, sha256: str) -> Path:
        """Path of the stored JPEG thumbnail of an image."""
        return self._path("thumbs", sha256, "jpg")

    def display_path(self, sha256: str) -> Path:
        """Path of the JPEG rendition shown for formats browsers cannot display (TIFF)."""
        return self._path("display", sha256, "jpg")

    def put_display(self, sha256: str, data: bytes) -> Path:
        path = self.display_path(sha256)
        _atomic_write(path, data)
        return path

    def has_image(self, sha256: str, image_format: str) -> bool:
        return self.image_path(sha256, image_format).exists()

    def put_image(self, sha256: str, image_format: str, data: bytes) -> Path:
        """Store an original (no-op when the same bytes are already stored)."""
        path = self.image_path(sha256, image_format)
        if not path.exists():
            _atomic_write(path, data)
        return path

    def put_thumbnail(self, sha256: str, data: bytes) -> Path:
        """Store a thumbnail, replacing any older one."""
        path = self.thumbnail_path(sha256)
        _atomic_write(path, data)
        return path

    def read_image(self, sha256: str, image_format: str) -> bytes:
        return self.image_path(sha256, image_format).read_bytes()
