"""Exports through the API: CSV and JSON Lines streamed, folders and model as files."""

from __future__ import annotations

from flask import request

from .. import export, export_http
from ..errors import LabelerError
from ..projects import project_by_id
from . import ApiError, bp
from .inputs import ExportQuery
from .spec import declare


@bp.get("/projects/<id:project_id>/export")
@declare("export", (200, None), 404, 409, query=ExportQuery, lead=True)
def export_project(project_id: int, query: ExportQuery):
    """The project's labels, images by class or trained classifier, as a download.

    Query: ``include_predictions=1`` (csv, jsonl) adds predictions and unlabelled images;
    ``val_split=0.2`` (folders) splits each class into train/ and val/. Leads only. A
    model export before any trained round is a 409.
    """
    project = project_by_id(project_id)
    export_format = query.format
    include_predictions = query.include_predictions
    if export_format in export_http.TEXT_FORMATS:
        return export_http.text_export(project, export_format,
                                       include_predictions=include_predictions)
    if export_format == "folders":
        return export_http.folders_zip(project,
                                       export_http.parse_val_split(request.args.get("val_split")))
    if export_format == "model":
        # Built within the request (a script waits for it); the web page builds it in a
        # background job instead (labeler.jobs.exports).
        export_model = export.model_exporter()
        if export_model is None:
            raise ApiError(409, "Conflict", export.MODEL_UNAVAILABLE)
        try:
            return export_http.send_built_file(
                lambda path: export_model(project, path), ".keras",
                f"{export_http.download_base(project)}.keras", "application/octet-stream")
        except LabelerError as exc:  # e.g. no trained round yet: the caller can fix that
            raise ApiError(409, "Conflict", str(exc)) from exc
    raise ApiError(400, "Bad request", f"Unknown export format {export_format!r}; use one of "
                   f"{', '.join(export.FORMATS)}.")
