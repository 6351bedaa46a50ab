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
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


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


#: Permission bits of files the app writes: readable by the other accounts that share the
#: data directory (the CLI and the server may run as different users); mkstemp's are 0600.
FILE_MODE = 0o644


def _temporary_name(path: Path, suffix: str) -> tuple[int, str]:
    """A new hidden file beside ``path``: ``.<name>.<random><suffix>`` (fd, name).

    Hidden (a leading dot), so listings of finished files (the export page, the map cache's
    clean-up) pass over it; ending in ``suffix`` for libraries that insist on one (Keras).
    """
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX: the directory entry is the folder's data)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(path: Path, *, suffix: str = "", mode: int = FILE_MODE, fsync: bool = True,
                  text: bool = False) -> Iterator[IO[Any]]:
    """Open ``path`` for writing so readers see the old file or the whole new one, never a part.

    Every file the app writes whole goes through here (heads, caches, exports, backups, the
    converted backbone, stored images). Writes go to a hidden temporary file beside
    ``path`` that replaces it when the block ends without an exception; an exception (or a
    crash) leaves ``path`` as it was, and the temporary file is removed (after a crash, at
    most a hidden stray remains).

    Args:
        path: the file to (re)place; its folder is created if missing.
        suffix: end of the temporary file's name, for writers that check it (Keras needs
            ``.keras``). The handle's ``name`` is that file's path, for libraries that write
            by file name: write through the handle or to ``handle.name``, not both.
        mode: permission bits of the finished file.
        fsync: flush the content and the rename to disk before returning, so a power cut
            leaves the old or the new content, never an empty file. Off only where the
            data can be had again (see ``BlobStore``).
        text: a UTF-8 text handle (``newline=""``, so csv's line ends pass unchanged).

    Yields:
        A binary (or text) file handle open for writing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = _temporary_name(path, suffix)
    os.close(fd)  # reopened by name, so that ``handle.name`` is the path
    try:
        with open(tmp_name, "w", encoding="utf-8", newline="") if text else \
                open(tmp_name, "wb") as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_folder(path.parent)


@contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """A folder that appears at ``path`` complete, or not at all (the folders export).

    Yields a hidden temporary folder beside ``path`` to fill; when the block ends it is
    renamed to ``path``, which must not exist or be an empty folder (a rename cannot
    replace a non-empty one). An exception removes the temporary folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield tmp
        for folder in (tmp, *(p for p in tmp.rglob("*") if p.is_dir())):
            os.chmod(folder, 0o755)  # mkdtemp's is 0700
        if path.exists():
            path.rmdir()  # empty (the caller checked): os.replace cannot replace a folder
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
        self._write(path, data)
        return path

    def has_image(self, sha256: str, image_format: str) -> bool:
        return self.image_path(sha256, image_format).exists()

    def put_image(self, sha256: str, image_format: str, data: bytes) -> Path:
        """Store an original (no-op when the same bytes are already stored)."""
        path = self.image_path(sha256, image_format)
        if not path.exists():
            self._write(path, data)
        return path

    def put_thumbnail(self, sha256: str, data: bytes) -> Path:
        """Store a thumbnail, replacing any older one."""
        path = self.thumbnail_path(sha256)
        self._write(path, data)
        return path

    def read_image(self, sha256: str, image_format: str) -> bytes:
        return self.image_path(sha256, image_format).read_bytes()

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        # No fsync per file, as the database commits with synchronous=NORMAL: an fsync costs
        # ~3 ms here, a large part of importing one image. The rename is still atomic, so a
        # crash of the process never leaves a partial file; only a power cut during an import
        # can (the newest files of that import).
        with atomic_writer(path, fsync=False) as handle:
            handle.write(data)
