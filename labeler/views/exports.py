"""The lead's export page: labels as CSV or JSON Lines, images in class folders, the model.

Dataset downloads are plain GET forms answered by ``labeler.export_http``, as the API's
are: CSV and JSON Lines streamed from one database snapshot, the folders zip built whole
under a temporary name and then sent. The model is built by a background job
(``labeler.jobs.exports`` says why) started by a CSRF-protected POST; the page shows the
job's progress and, once the file exists, a link to it.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from .. import export, export_http, model_files
from ..config import is_truthy
from ..errors import LabelerError
from ..jobs import JobAlreadyRunning
from ..jobs import exports as export_jobs
from ..models import Project
from ..projects import project_by_id, project_counts
from .access import lead_required
from .forms import ExportModelForm

bp = Blueprint("exports", __name__)

def _page(project: Project, *, error: str = "", status: int = 200):
    """The export page, with the state of the model export."""
    job = export_jobs.latest_export_job(project)
    built = model_files.built_model(project.id)
    trained = model_files.trained_round(project)
    return render_template(
        "exports.html", project=project, counts=project_counts(project), error=error,
        model_available=export.model_exporter() is not None, trained=trained, built=built,
        job=job, job_failed=bool(job and job.status == "failed"
                                 and (built is None or built.job_id < job.id)),
        form=ExportModelForm()), status


@bp.route("/<id:project_id>/export")
@lead_required
def export_page(project_id: int):
    """What a lead can export from the project, and the model export's progress."""
    return _page(project_by_id(project_id))


@bp.route("/<id:project_id>/export/<any(csv, jsonl, folders):export_format>")
@lead_required
def download(project_id: int, export_format: str):
    """Download the labels (csv, jsonl; ``include_predictions``) or the folders zip
    (``val_split``); bad input gets the page back with the reason."""
    project = project_by_id(project_id)
    if export_format == "folders":
        try:
            val_split = export_http.parse_val_split(request.args.get("val_split"))
        except LabelerError as exc:
            return _page(project, error=str(exc), status=400)
        return export_http.folders_zip(project, val_split)
    include_predictions = is_truthy(request.args.get("include_predictions"))
    return export_http.text_export(project, export_format,
                                   include_predictions=include_predictions)


@bp.route("/<id:project_id>/export/model", methods=["POST"])
@lead_required
def start_model_export(project_id: int):
    """Queue the job that builds the model file, then show its progress."""
    project = project_by_id(project_id)
    if not ExportModelForm().validate_on_submit():
        return _page(project, error="The form expired; reload the page and try again.",
                     status=400)
    if model_files.trained_round(project) is None:
        return _page(project, error="There is no trained model to export yet.", status=400)
    try:
        export_jobs.submit_model_export(current_app._get_current_object(), project)
    except JobAlreadyRunning as exc:
        flash(str(exc), "info")
    except LabelerError as exc:  # e.g. the job queue cannot be reached
        return _page(project, error=str(exc), status=503)
    return redirect(url_for("exports.export_page", project_id=project.id) + "#model", 303)


@bp.route("/<id:project_id>/export/model.keras")
@lead_required
def model_file(project_id: int):
    """The newest model file an export job built for the project."""
    project = project_by_id(project_id)
    built = model_files.built_model(project.id)
    try:
        handle = built.path.open("rb") if built else None
    except FileNotFoundError:  # replaced by a newer export between listing and opening
        handle = None
    if built is None or handle is None:
        abort(404, "No model file has been built for this project; build one on the "
                   "export page first.")
    return send_file(handle, mimetype="application/octet-stream", as_attachment=True,
                     download_name=f"{export_http.download_base(project)}-round"
                                   f"{built.round_number}.keras")
