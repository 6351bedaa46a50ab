"""Exports through the API: CSV and JSON Lines streamed, folders and model as files."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from flask import Response, request, send_file, stream_with_context

from .. import export
from ..errors import LabelerError
from ..storage import blob_store, data_root
from . import ApiError, bp, require_lead
from .labelling import get_project_or_404

TRUE = {"1", "true", "yes", "on"}


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def _val_split() -> float | None:
    raw = request.args.get("val_split", "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise ApiError(400, "Bad request", f"val_split={raw!r} is not a fraction between 0 and "
                       "1; give e.g. val_split=0.2.")
    return value


def _send_built_file(build: Callable[[Path], object], suffix: str, download_name: str,
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


@bp.get("/projects/<int:project_id>/export")
def export_project(project_id: int):
    """Download an export: ``format`` = csv, jsonl, folders (a zip) or model (.keras).

    Query: ``include_predictions=1`` (csv, jsonl) adds predictions and unlabelled images;
    ``val_split=0.2`` (folders) splits each class into train/ and val/. Leads only.
    """
    require_lead()
    project = get_project_or_404(project_id)
    export_format = request.args.get("format", "").strip().lower()
    include_predictions = request.args.get("include_predictions", "").lower() in TRUE
    base = export.safe_name(project.name, f"project-{project.id}")
    if export_format in {"csv", "jsonl"}:
        if export_format == "csv":
            chunks = export.iter_csv(project, include_predictions=include_predictions)
            mimetype = "text/csv; charset=utf-8"
        else:
            chunks = export.iter_jsonl(project, include_predictions=include_predictions)
            mimetype = "application/x-ndjson; charset=utf-8"
        return Response(stream_with_context(chunks), mimetype=mimetype,
                        headers=_attachment(f"{base}.{export_format}"))
    if export_format == "folders":
        val_split = _val_split()
        store = blob_store()
        return _send_built_file(
            lambda path: export.write_folders(project, path, store, val_split=val_split),
            ".zip", f"{base}-folders.zip", "application/zip")
    if export_format == "model":
        export_model = export.model_exporter()
        if export_model is None:
            raise ApiError(400, "Bad request", export.MODEL_UNAVAILABLE)
        try:
            return _send_built_file(lambda path: export_model(project, path), ".keras",
                                    f"{base}.keras", "application/octet-stream")
        except LabelerError as exc:  # e.g. no trained round yet: the caller can fix that
            raise ApiError(400, "Bad request", str(exc)) from exc
    raise ApiError(400, "Bad request", f"Unknown export format {export_format!r}; use one of "
                   f"{', '.join(export.FORMATS)}.")
