"""Exports as HTTP downloads, shared by the JSON API and the lead's export page.

CSV and JSON Lines are streamed straight from ``labeler.export``'s single SELECT, so the
download is one snapshot of the database however long the client takes to read it. The
first chunk (the SELECT run, the header and the first rows formatted) is made before the
response is returned, so a failure there is an ordinary error answer (the API's JSON, the
page's message) rather than a download cut off after its first byte.

A folders zip cannot be streamed as it is built (the zip's directory comes last and a
failure half-way would leave the client a truncated file that looks complete), so it is
built under a private temporary name first, as the CLI builds it, and then streamed from
disk.
"""

from __future__ import annotations

import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

from flask import Response, send_file, stream_with_context

from . import export
from .errors import LabelerError
from .models import Project
from .storage import blob_store, data_root

TEXT_FORMATS = {"csv": "text/csv; charset=utf-8",
                "jsonl": "application/x-ndjson; charset=utf-8"}


def download_base(project: Project) -> str:
    """The file name stem of a project's downloads (safe on every OS)."""
    return export.safe_name(project.name, f"project-{project.id}")


def attachment(filename: str, fallback: str = "download") -> dict[str, str]:
    """Headers that make the browser save the response as ``filename`` (any characters).

    HTTP header values are Latin-1, and gunicorn refuses a response whose header holds
    anything else (a project called "海" made every CSV export of it a 500). So the name
    goes twice, as RFC 6266 says: ``filename`` an ASCII rendering (``fallback`` when
    nothing of it is ASCII), ``filename*`` the exact name, UTF-8 and percent-encoded.
    """
    stem, dot, suffix = filename.rpartition(".")
    if not dot:
        stem, suffix = filename, ""
    ascii_stem = "".join(char for char in unicodedata.normalize("NFKD", stem)
                         if " " <= char <= "~" and char not in '"\\')
    ascii_name = (ascii_stem.strip() or fallback) + (f".{suffix}" if dot else "")
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='', errors='replace')}"
    return {"Content-Disposition": value}


def _stream(first: str, rest: Iterator[str]) -> Iterator[str]:
    """``first``, then the rest; closing the stream closes ``rest`` (and its SELECT)."""
    try:
        yield first
        yield from rest
    finally:
        close = getattr(rest, "close", None)
        if close is not None:
            close()


def parse_val_split(raw: str | None) -> float | None:
    """The validation share given in a query string: None when empty, else in (0, 1).

    Raises:
        LabelerError: the value is not a fraction strictly between 0 and 1.
    """
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise LabelerError(f"val_split={raw!r} is not a fraction between 0 and 1; give e.g. "
                           "val_split=0.2, or leave it empty for no validation split.")
    return value


def text_export(project: Project, export_format: str, *, include_predictions: bool) -> Response:
    """The CSV or JSON Lines export, streamed as it is read from one database snapshot.

    The first chunk is made here, before any byte is sent: an error in running the SELECT
    or in formatting the first rows raises from this function, so the caller answers it
    like any other error instead of sending a download that stops short.
    """
    if export_format == "csv":
        chunks = export.iter_csv(project, include_predictions=include_predictions)
    else:
        chunks = export.iter_jsonl(project, include_predictions=include_predictions)
    first = next(chunks)  # every iterator of labeler.export yields at least the header
    return Response(stream_with_context(_stream(first, chunks)),
                    content_type=TEXT_FORMATS[export_format],
                    headers=attachment(f"{download_base(project)}.{export_format}",
                                       f"project-{project.id}"))


def send_built_file(build: Callable[[Path], object], suffix: str, download_name: str,
                    mimetype: str) -> Response:
    """Build an export into a private temporary folder and send it; the folder goes at once.

    The file is opened before its folder is removed: on POSIX the open handle keeps the
    data readable until the response is closed, so nothing is left behind on disk.
    """
    scratch = data_root() / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=scratch, prefix="export-"))
    try:
        path = folder / f"export{suffix}"
        build(path)
        handle = path.open("rb")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return send_file(handle, mimetype=mimetype, as_attachment=True,
                     download_name=download_name)


def folders_zip(project: Project, val_split: float | None) -> Response:
    """The labelled images, one folder per class (in train/ and val/ with a split), zipped."""
    store = blob_store()
    return send_built_file(
        lambda path: export.write_folders(project, path, store, val_split=val_split),
        ".zip", f"{download_base(project)}-folders.zip", "application/zip")
