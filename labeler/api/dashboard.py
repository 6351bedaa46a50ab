"""The lead's dashboard: one read of everything the page draws, and the training settings.

``GET /projects/<id>/dashboard`` answers counts per class (labelled and auto-tagged), the
learning curve (one point per trained round), the active round's metrics, per-annotator
rates and the project's recent jobs, so the page can redraw itself from a single request.
``POST /projects/<id>/settings`` changes the sampling strategy and the retrain interval.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import jsonify
from sqlalchemy import Integer, case, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from ..embedder import embedding_counts
from ..extensions import db
from ..models import Annotation, Image, Job, JobStatus, ModelRound, Project, User, utcnow
from ..projects import project_counts
from ..sampling import STRATEGIES
from ..training import (
    labels_until_next_round,
    latest_round,
    project_retrain_every,
    project_strategy,
    set_training_options,
)
from . import ApiError, bp, require_lead, serialize
from .labelling import get_project_or_404
from .payload import field, json_body

#: Jobs listed on the dashboard, newest first (older ones stay in the database).
JOB_LIMIT = 20
#: Annotator activity is counted in buckets of this many seconds: a bucket with at least one
#: label is "active time". Pauses longer than a bucket therefore do not dilute the rate.
ACTIVE_BUCKET_S = 300


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


def _bucket(column: Any) -> ColumnElement[Any]:
    """The ``ACTIVE_BUCKET_S``-second bucket of a timestamp column, in the database."""
    if db.engine.dialect.name == "sqlite":
        return cast(func.strftime("%s", column), Integer) / ACTIVE_BUCKET_S
    return func.floor(func.extract("epoch", column) / ACTIVE_BUCKET_S)


def _annotators(project: Project, now: datetime) -> list[dict[str, Any]]:
    """Per annotator: labels kept (not undone), labels in the last hour, labels per hour.

    Labels per hour divide the labels by the annotator's active time: the number of
    five-minute buckets in which they labelled at least once, so that a lunch break or a
    weekend does not count as slow labelling. Everything is aggregated by the database.
    """
    hour_ago = now - timedelta(hours=1)
    rows = db.session.execute(
        select(User.username, func.count(Annotation.id),
               func.sum(case((Annotation.created_at >= hour_ago, 1), else_=0)),
               func.count(func.distinct(_bucket(Annotation.created_at))),
               func.max(Annotation.created_at))
        .join(User, User.id == Annotation.annotator_id)
        .where(Annotation.project_id == project.id, Annotation.undone_at.is_(None))
        .group_by(User.username)
        .order_by(func.count(Annotation.id).desc(), User.username)).all()
    result = []
    for username, total, last_hour, buckets, last_at in rows:
        active_hours = max(int(buckets), 1) * ACTIVE_BUCKET_S / 3600
        result.append({"username": username, "labels": int(total),
                       "last_hour": int(last_hour or 0),
                       "per_hour": round(total / active_hours, 1),
                       "active_minutes": round(active_hours * 60),
                       "last_label_at": last_at.isoformat() if last_at else None})
    return result


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
        annotators=_annotators(project, utcnow()),
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
