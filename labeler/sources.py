"""Where imported files come from: folders (recursively), zip archives, uploaded files.

Each yields ``Source`` items that read their bytes lazily, or ``Rejected`` items for
entries refused before reading (unsafe zip paths, zip bombs, nested archives). Hostile
archives are judged from their directory alone, before a byte is decompressed.

A source's name is what the image is called from then on (its ``original_name``): the path
relative to what was imported, never where the file sat on the server. A folder's files
keep the folder's own name (``holiday/beach.jpg``), a zip's entries the zip's name
(``holiday.zip!beach.jpg``), a single file its name.
"""

from __future__ import annotations

import os
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Protocol


@dataclass(frozen=True)
class Source:
    """One candidate file: a display name, a reader, and the folder it sat in."""

    name: str
    read: Callable[[], bytes]
    folder: str | None  # parent folder's name, for --labels-from-folders
    size: int


@dataclass(frozen=True)
class Rejected:
    """A file that was not imported, and why (one line)."""

    name: str
    reason: str


@dataclass(frozen=True)
class SourceLimits:
    max_file_bytes: int
    zip_max_ratio: int
    zip_max_total_bytes: int
    # The data directory: importing a folder that contains it must not import the store.
    skip_dir: Path | None = None


def _is_hidden(name: str) -> bool:
    # .DS_Store, ._resource-forks, .git: never images the user meant to import.
    return name.startswith(".") or name == "__MACOSX"


def _too_large(size: int, limits: SourceLimits) -> str | None:
    if size > limits.max_file_bytes:
        return (f"file is {size / 2**20:.0f} MiB, above the "
                f"{limits.max_file_bytes / 2**20:.0f} MiB limit (LABELER_MAX_UPLOAD_MB)")
    return None


def display_text(name: str) -> str:
    """``name`` as text a database stores: undecodable bytes of a file name become U+FFFD.

    Python hands a file name that is not UTF-8 over with surrogate escapes, which neither
    SQLite nor PostgreSQL accept (such a name made the whole import fail); PostgreSQL
    refuses NUL in text too, which an uploaded file's name can carry.
    """
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text.replace("\x00", "\ufffd")


def iter_folder(root: Path, limits: SourceLimits) -> Iterator[Source | Rejected]:
    """Every non-hidden file below ``root``, in a stable (sorted) order.

    Each is named by its path below ``root`` after ``root``'s own name
    (``holiday/2024/beach.jpg`` for ``/srv/photos/holiday``).
    """
    skip = limits.skip_dir.resolve() if limits.skip_dir else None
    # abspath, not resolve: the name the user gave, even when it is a symbolic link.
    top = PurePosixPath(Path(os.path.abspath(root)).name)
    for dirpath, dirnames, filenames in os.walk(root):
        if skip is not None and Path(dirpath).resolve() == skip:
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        below = PurePosixPath(*Path(dirpath).relative_to(root).parts)
        for filename in sorted(filenames):
            if _is_hidden(filename):
                continue
            path = Path(dirpath) / filename
            yield from iter_file(path, limits, display=str(top / below / filename))


def iter_file(path: Path, limits: SourceLimits, display: str | None = None
              ) -> Iterator[Source | Rejected]:
    """A single file on disk, or the entries of a zip archive (named ``display``, by
    default the file's own name)."""
    display = display_text(display or path.name or str(path))
    try:
        size = path.stat().st_size
    except OSError as exc:
        yield Rejected(display, f"cannot read file: {exc.strerror or exc}")
        return
    if zipfile.is_zipfile(path):
        yield from iter_zip(path, limits, display)
        return
    if reason := _too_large(size, limits):
        yield Rejected(display, reason)
        return
    yield Source(display, path.read_bytes, path.parent.name or None, size)


def unsafe_zip_path(name: str) -> str | None:
    """Why a zip entry's name is unsafe to use as a path, or None when it is fine."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path in zip entry refused"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "zip entry with '..' in its path refused (zip-slip)"
    return None


def iter_zip(path: Path, limits: SourceLimits, display: str) -> Iterator[Source | Rejected]:
    """Entries of a zip file, with hostile entries rejected from the directory alone."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield Rejected(display, f"corrupt zip archive: {exc}")
        return
    except UnicodeDecodeError:
        yield Rejected(display, "the archive says its entry names are UTF-8 but they are "
                                "not; re-create the zip with another tool")
        return
    lock = threading.Lock()  # one archive handle shared by the decoding threads

    def reader(info: zipfile.ZipInfo) -> Callable[[], bytes]:
        def read() -> bytes:
            with lock:
                return archive.read(info)
        return read

    declared_total = 0
    for info in archive.infolist():
        name = f"{display}!{info.filename}"
        if reason := unsafe_zip_path(info.filename):
            yield Rejected(name, reason)
            continue
        if info.is_dir() or any(_is_hidden(p) for p in PurePosixPath(info.filename).parts):
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1_000_000 and ratio > limits.zip_max_ratio:
            yield Rejected(name, f"compression ratio {ratio:.0f}:1 is above "
                                 f"{limits.zip_max_ratio}:1 (zip bomb?)")
            continue
        declared_total += info.file_size
        if declared_total > limits.zip_max_total_bytes:
            yield Rejected(name, "archive expands beyond "
                                 f"{limits.zip_max_total_bytes / 2**20:.0f} MiB; split it")
            continue
        if reason := _too_large(info.file_size, limits):
            yield Rejected(name, reason)
            continue
        if info.filename.lower().endswith((".zip", ".jar", ".tar", ".gz", ".7z", ".rar")):
            yield Rejected(name, "archive inside an archive is not imported; extract it first")
            continue
        parent = PurePosixPath(info.filename).parent.name
        yield Source(name, reader(info), parent or None, info.file_size)


def iter_paths(paths: list[Path], limits: SourceLimits) -> Iterator[Source | Rejected]:
    """Folders (recursively), zip files and single files, in the order given."""
    for path in paths:
        if path.is_dir():
            yield from iter_folder(path, limits)
        elif path.exists():
            yield from iter_file(path, limits)
        else:
            yield Rejected(display_text(str(path)), "no such file or folder")


class Upload(Protocol):
    """What a browser upload offers (werkzeug's FileStorage has it)."""

    filename: str | None

    def save(self, dst: str) -> None: ...


def upload_display_name(filename: str | None, index: int) -> str:
    """The file's own name without any client-supplied directories (never used as a path)."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name.strip()
    return display_text(name) or f"upload-{index + 1}"


def iter_uploads(files: list[Upload], workdir: Path, limits: SourceLimits
                 ) -> Iterator[Source | Rejected]:
    """Uploaded files (single images or zips), spooled into ``workdir`` under safe names."""
    for index, upload in enumerate(files):
        display = upload_display_name(upload.filename, index)
        path = workdir / f"{index:06d}.upload"  # our name: the client's never touches disk
        upload.save(str(path))
        for item in iter_file(path, limits, display=display):
            if isinstance(item, Source) and not zipfile.is_zipfile(path):
                item = replace(item, folder=None)  # a loose file has no class folder
            yield item
