"""Projects, their statistics, retrain rounds and jobs."""

from __future__ import annotations

from flask import current_app
from flask_login import current_user

from ..extensions import db
from ..jobs.pipelines import submit_finetune, upload_then_embed
from ..jobs.triggers import submit_retrain
from ..models import Job
from ..projects import create_project, project_by_id
from ..projects import list_projects as all_projects
from ..reports import all_rounds, project_status
from . import ApiError, bp, schemas, serialize
from .inputs import NewProject, UploadForm
from .spec import declare


@bp.get("/projects")
@declare("listProjects", (200, schemas.ProjectList))
def list_projects():
    """All projects with their classes and counts."""
    return {"projects": [serialize.project(p) for p in all_projects()]}


@bp.post("/projects")
@declare("createProject", (201, schemas.Project), 409, json=NewProject, lead=True)
def new_project(json: NewProject):
    """Create a project (leads only)."""
    return serialize.project(create_project(json.name, json.classes)), 201


@bp.get("/projects/<id:project_id>/stats")
@declare("projectStats", (200, schemas.Stats), 404)
def project_stats(project_id: int):
    """Counts per class, labelled/unlabelled/embedded, and the rounds."""
    project = project_by_id(project_id)
    status = project_status(project)
    active = status.active_round
    return {"counts": {**status.counts, "embedded": status.embedded},
            "labels_until_next_round": status.labels_until_next_round,
            "active_round": serialize.model_round(active) if active else None,
            "rounds": [serialize.model_round(r) for r in all_rounds(project)]}


@bp.post("/projects/<id:project_id>/images")
@declare("uploadImages", (200, schemas.UploadReport), 404, 413, form=UploadForm,
         lead=True)
def upload_images(project_id: int, form: UploadForm):
    """Upload images or zip archives (leads only); per-file results with reasons."""
    project = project_by_id(project_id)
    files = [f for f in form.files if getattr(f, "filename", None)]
    if not files:
        raise ApiError(400, "Bad request", "Send one or more files in the multipart field "
                       "'files' (images or zip archives), each with a file name.")
    report = upload_then_embed(current_app._get_current_object(), project, files,
                               labels_from_folders=form.labels_from_folders,
                               annotator=current_user)
    return report.as_dict()


@bp.post("/projects/<id:project_id>/retrain")
@declare("retrain", (202, schemas.QueuedJob), 404, 409, lead=True)
def retrain(project_id: int):
    """Start a retrain round in the background (leads only)."""
    project = project_by_id(project_id)
    job = submit_retrain(current_app._get_current_object(), project)
    return {"job_id": job.id, "status": job.status}, 202


@bp.post("/projects/<id:project_id>/finetune")
@declare("finetune", (202, schemas.QueuedJob), 404, 409, lead=True)
def finetune(project_id: int):
    """Start fine-tuning the project's backbone in the background: adopted only if it beats
    the frozen backbone on held-out labels (leads only)."""
    project = project_by_id(project_id)
    job = submit_finetune(current_app._get_current_object(), project)
    return {"job_id": job.id, "status": job.status}, 202


@bp.get("/jobs/<id:job_id>")
@declare("jobStatus", (200, schemas.Job), 404)
def job_status(job_id: int):
    """A background job's status, progress and message."""
    job = db.session.get(Job, job_id)
    if job is None:
        raise ApiError(404, "Not found", f"No job with id {job_id}.")
    return serialize.job(job)


@bp.get("/me")
@declare("me", (200, schemas.Me))
def me():
    """Who the caller is."""
    return {"username": current_user.username, "role": current_user.role}
