"""The lead's dashboard: one read of everything the page draws, and the training settings.

``GET /projects/<id>/dashboard`` answers counts per class (labelled and auto-tagged), the
learning curve (one point per trained round), the active round's metrics, per-annotator
rates (``labeler.reports``) and the project's recent jobs, so the page can redraw itself
from a single request.
``POST /projects/<id>/settings`` changes the sampling strategy and the retrain interval.
"""

from __future__ import annotations

from typing import Any

from ..finetuning import finetune_record, pending_backbone
from ..learning.query import STRATEGIES
from ..models import JobStatus, Project, utcnow
from ..projects import project_by_id
from ..reports import (
    annotator_reports,
    class_counts,
    learning_curve,
    outlook,
    project_status,
    recent_jobs,
)
from ..training import project_retrain_every, project_strategy, set_training_options
from . import bp, schemas, serialize
from .inputs import TrainingSettings
from .spec import declare

#: Jobs listed on the dashboard, newest first (older ones stay in the database).
JOB_LIMIT = 20


def _settings(project: Project) -> dict[str, Any]:
    return {"strategy": project_strategy(project),
            "retrain_every": project_retrain_every(project),
            "strategies": [{"name": name, "help": text} for name, text in STRATEGIES.items()]}


@bp.get("/projects/<id:project_id>/dashboard")
@declare("dashboard", (200, schemas.Dashboard), 404, lead=True)
def dashboard(project_id: int):
    """Everything the dashboard page draws, in one response (leads only)."""
    project = project_by_id(project_id)
    status = project_status(project)
    counts = status.counts
    jobs = [serialize.job(j) for j in recent_jobs(project, JOB_LIMIT)]
    curve = learning_curve(project)
    return {
        "project": {"id": project.id, "name": project.name},
        "totals": {"images": counts["images"], "labelled": counts["labelled"],
                   "unlabelled": counts["unlabelled"], "embedded": status.embedded},
        "classes": class_counts(project, counts["per_class"]),
        "curve": curve,
        "outlook": outlook(status.active_round, curve),
        "latest_round": (serialize.model_round(status.active_round)
                         if status.active_round else None),
        "last_round": serialize.model_round(status.last_round) if status.last_round else None,
        "labels_until_next_round": status.labels_until_next_round,
        "settings": _settings(project),
        "annotators": [r.as_dict() for r in annotator_reports(project.id, utcnow())],
        "jobs": jobs,
        "any_job_active": any(j["status"] in (JobStatus.QUEUED, JobStatus.RUNNING)
                              for j in jobs),
        "finetune": _finetune(project),
    }


def _finetune(project: Project) -> dict[str, Any] | None:
    record = finetune_record(project)
    if record is None:
        return None
    shown = ("at", "n_labels", "frozen_accuracy", "finetuned_accuracy", "adopted", "reason")
    return {**{key: record[key] for key in shown},
            "pending": pending_backbone(project) is not None}


@bp.post("/projects/<id:project_id>/settings")
@declare("trainingSettings", (200, schemas.Settings), 404, json=TrainingSettings,
         lead=True)
def training_settings(project_id: int, json: TrainingSettings):
    """Change the sampling strategy and/or retrain interval (leads only)."""
    project = project_by_id(project_id)
    set_training_options(project, strategy=json.strategy, retrain_every=json.retrain_every)
    return _settings(project)
