"""Projects, their statistics, retrain rounds and jobs."""

from __future__ import annotations

from flask import current_app, jsonify
from flask_login import current_user

from ..config import is_truthy
from ..extensions import db
from ..jobs.pipelines import submit_finetune, upload_then_embed
from ..jobs.triggers import submit_retrain
from ..models import Job
from ..projects import create_project, project_by_id
from ..projects import list_projects as all_projects
from ..reports import all_rounds, project_status
from . import ApiError, bp, require_lead, serialize
from .payload import field, json_body


@bp.get("/projects")
def list_projects():
    return jsonify(projects=[serialize.project(p) for p in all_projects()])


@bp.post("/projects")
def new_project():
    require_lead()
    data = json_body()
    classes = field(data, "classes", list, required=False) or []
    if not all(isinstance(name, str) for name in classes):
        raise ApiError(400, "Bad request", "Field 'classes' must be a list of strings.")
    project = create_project(field(data, "name", str), classes)
    return jsonify(serialize.project(project)), 201


@bp.get("/projects/<int:project_id>/stats")
def project_stats(project_id: int):
    project = project_by_id(project_id)
    status = project_status(project)
    active = status.active_round
    return jsonify(
        counts={**status.counts, "embedded": status.embedded},
        labels_until_next_round=status.labels_until_next_round,
        active_round=serialize.model_round(active) if active else None,
        rounds=[serialize.model_round(r) for r in all_rounds(project)],
    )


@bp.post("/projects/<int:project_id>/images")
def upload_images(project_id: int):
    """Upload images and zips (multipart, field ``files``); per-file results with reasons."""
    from flask import request

    require_lead()
    project = project_by_id(project_id)
    files = [f for f in request.files.getlist("files") if f and f.filename]
    if not files:
        raise ApiError(400, "Bad request", "Send one or more files in the multipart field "
                       "'files' (images or zip archives).")
    labels_from_folders = is_truthy(request.form.get("labels_from_folders"))
    report = upload_then_embed(current_app._get_current_object(), project, files,
                               labels_from_folders=labels_from_folders, annotator=current_user)
    return jsonify(report.as_dict())


@bp.post("/projects/<int:project_id>/retrain")
def retrain(project_id: int):
    require_lead()
    project = project_by_id(project_id)
    job = submit_retrain(current_app._get_current_object(), project)
    return jsonify(job_id=job.id, status=job.status), 202


@bp.post("/projects/<int:project_id>/finetune")
def finetune(project_id: int):
    require_lead()
    project = project_by_id(project_id)
    job = submit_finetune(current_app._get_current_object(), project)
    return jsonify(job_id=job.id, status=job.status), 202


@bp.get("/jobs/<int:job_id>")
def job_status(job_id: int):
    job = db.session.get(Job, job_id)
    if job is None:
        raise ApiError(404, "Not found", f"No job with id {job_id}.")
    return jsonify(serialize.job(job))


@bp.get("/me")
def me():
    return jsonify(username=current_user.username, role=current_user.role)
