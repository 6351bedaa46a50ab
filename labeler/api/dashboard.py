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
from sqlalchemy import func, select

from ..extensions import db
from ..learning.strategies import STRATEGIES
from ..models import Image, Job, JobStatus, ModelRound, Project, utcnow
from ..project_vectors import embedding_counts
from ..projects import project_counts
from ..reports import annotator_reports
from ..rounds import latest_round
from ..training import (
    labels_until_next_round,
    project_retrain_every,
    project_strategy,
    set_training_options,
)
from . import ApiError, bp, require_lead, serialize
from .labelling import get_project_or_404
from .payload import field, json_body

#: Jobs listed on the dashboard, newest first (older ones stay in the database).
JOB_LIMIT = 20


def _per_class(project: Project, counts: dict[str, Any]) -> list[dict[str, Any]]:
    """Labelled and auto-tagged (predicted, not yet labelled) images of each active class."""
    predicted = dict(db.session.execute(
        select(Image.predicted_class_id, func.count())
        .where(Image.project_id == project.id, Image.label_class_id.is_(None),
               Image.predicted_class_id.is_not(None))
        .group_by(Image.predicted_class_id)).all())
    labelled = counts["per_class"]
    return [{"name": c.name, "colour": c.colour, "labelled": labelled.get(c.name, 0),
             "predicted": predicted.get(c.id, 0)} for c in project.active_classes()]


def _curve(project: Project) -> list[dict[str, Any]]:
    """One point per succeeded round that measured a cross-validated accuracy."""
    rounds = db.session.scalars(
        select(ModelRound).where(ModelRound.project_id == project.id,
                                 ModelRound.status == JobStatus.SUCCEEDED)
        .order_by(ModelRound.number)).all()
    return [{"round": r.number, "n_labels": r.n_labels,
             "accuracy": (r.metrics or {}).get("accuracy"),
             "macro_f1": (r.metrics or {}).get("macro_f1"), "strategy": r.strategy}
            for r in rounds if (r.metrics or {}).get("accuracy") is not None]


def _jobs(project: Project) -> list[dict[str, Any]]:
    jobs = db.session.scalars(select(Job).where(Job.project_id == project.id)
                              .order_by(Job.id.desc()).limit(JOB_LIMIT)).all()
    return [serialize.job(j) for j in jobs]


def _settings(project: Project) -> dict[str, Any]:
    return {"strategy": project_strategy(project),
            "retrain_every": project_retrain_every(project),
            "strategies": [{"name": name, "help": text} for name, text in STRATEGIES.items()]}


@bp.get("/projects/<int:project_id>/dashboard")
def dashboard(project_id: int):
    """Everything the dashboard page draws, in one response (leads only)."""
    require_lead()
    project = get_project_or_404(project_id)
    counts = project_counts(project)
    embedded, _ = embedding_counts(project)
    active = latest_round(project)
    last_any = latest_round(project, succeeded_only=False)
    jobs = _jobs(project)
    return jsonify(
        project={"id": project.id, "name": project.name},
        totals={"images": counts["images"], "labelled": counts["labelled"],
                "unlabelled": counts["unlabelled"], "embedded": embedded},
        classes=_per_class(project, counts),
        curve=_curve(project),
        latest_round=serialize.model_round(active) if active else None,
        last_round=serialize.model_round(last_any) if last_any else None,
        labels_until_next_round=labels_until_next_round(project),
        settings=_settings(project),
        annotators=[r.as_dict() for r in annotator_reports(project.id, utcnow())],
        jobs=jobs,
        any_job_active=any(j["status"] in (JobStatus.QUEUED, JobStatus.RUNNING) for j in jobs),
    )


@bp.post("/projects/<int:project_id>/settings")
def training_settings(project_id: int):
    """Change the sampling strategy and/or retrain-every-N of a project (leads only)."""
    require_lead()
    project = get_project_or_404(project_id)
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
