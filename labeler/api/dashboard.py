"""The lead's dashboard: one read of everything the page draws, and the training settings.

``GET /projects/<id>/dashboard`` answers counts per class (labelled and auto-tagged), the
learning curve (one point per trained round), the active round's metrics, per-annotator
rates (``labeler.reports``) and the project's recent jobs, so the page can redraw itself
from a single request.
``POST /projects/<id>/settings`` changes the sampling strategy and the retrain interval.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify

from ..finetuning import finetune_record, pending_backbone
from ..learning.strategies import STRATEGIES
from ..models import JobStatus, Project, utcnow
from ..projects import project_by_id
from ..reports import (
    annotator_reports,
    class_counts,
    learning_curve,
    project_status,
    recent_jobs,
)
from ..training import project_retrain_every, project_strategy, set_training_options
from . import ApiError, bp, require_lead, serialize
from .payload import field, json_body

#: Jobs listed on the dashboard, newest first (older ones stay in the database).
JOB_LIMIT = 20


def _settings(project: Project) -> dict[str, Any]:
    return {"strategy": project_strategy(project),
            "retrain_every": project_retrain_every(project),
            "strategies": [{"name": name, "help": text} for name, text in STRATEGIES.items()]}


@bp.get("/projects/<int:project_id>/dashboard")
def dashboard(project_id: int):
    """Everything the dashboard page draws, in one response (leads only)."""
    require_lead()
    project = project_by_id(project_id)
    status = project_status(project)
    counts = status.counts
    jobs = [serialize.job(j) for j in recent_jobs(project, JOB_LIMIT)]
    return jsonify(
        project={"id": project.id, "name": project.name},
        totals={"images": counts["images"], "labelled": counts["labelled"],
                "unlabelled": counts["unlabelled"], "embedded": status.embedded},
        classes=class_counts(project, counts["per_class"]),
        curve=learning_curve(project),
        latest_round=serialize.model_round(status.active_round) if status.active_round else None,
        last_round=serialize.model_round(status.last_round) if status.last_round else None,
        labels_until_next_round=status.labels_until_next_round,
        settings=_settings(project),
        annotators=[r.as_dict() for r in annotator_reports(project.id, utcnow())],
        jobs=jobs,
        any_job_active=any(j["status"] in (JobStatus.QUEUED, JobStatus.RUNNING) for j in jobs),
        finetune=_finetune(project),
    )


def _finetune(project: Project) -> dict[str, Any] | None:
    record = finetune_record(project)
    if record is None:
        return None
    shown = ("at", "n_labels", "frozen_accuracy", "finetuned_accuracy", "adopted", "reason")
    return {**{key: record[key] for key in shown},
            "pending": pending_backbone(project) is not None}


@bp.post("/projects/<int:project_id>/settings")
def training_settings(project_id: int):
    """Change the sampling strategy and/or retrain-every-N of a project (leads only)."""
    require_lead()
    project = project_by_id(project_id)
    data = json_body()
    strategy = field(data, "strategy", str, required=False)
    retrain_every = field(data, "retrain_every", int, required=False)
    if strategy is None and retrain_every is None:
        raise ApiError(400, "Bad request",
                       "Send 'strategy' and/or 'retrain_every' to change a setting.")
    if retrain_every is not None and retrain_every > 100_000:
        raise ApiError(400, "Bad request",
                       "Retrain every N labels needs N of at most 100000.")
    set_training_options(project, strategy=strategy, retrain_every=retrain_every)
    return jsonify(_settings(project))
