"""A retrain round: fit the head on all labels, measure it, auto-tag and re-rank the pool.

``run_round`` is the one implementation; ``labeler retrain``, the automatic trigger (every
N new labels) and the lead's button all run it as a job of kind ``retrain``, so the
database never holds two rounds of one project at once. Labelling goes on meanwhile:
reads never wait for the model, and predictions are written in short transactions.

"Not enough labels to train" is a normal state: the round then only ranks the pool for
cold start (most typical image of each cluster) and records why, as a skipped round.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select, update

from .embeddings.dense_head import KerasDenseHead
from .errors import Conflict, LabelerError
from .extensions import db
from .learning import label_issues, label_quality, query, tag_query
from .learning.calibration import apply_temperature
from .learning.head_options import DEFAULT_HEAD, HEAD_OPTIONS, NEEDS_GRAPH, head_factory
from .learning.heads import NotEnoughLabels
from .learning.round_fit import fit_round
from .learning.round_report import calibration_report, precision_thresholds
from .models import Image, JobStatus, ModelRound, Project
from .pool_derived import near_duplicate_groups, pool_graph
from .project_vectors import pool_vectors
from .projects import count_images, image_count
from .round_cadence import check_min_round_interval
from .rounds import save_head
from .tag_training import tag_round
from .vectors import VectorStore

log = logging.getLogger(__name__)

DEFAULT_STRATEGY = "auto"
DEFAULT_RETRAIN_EVERY = 20
#: The heads a project can choose: those of ``learning.head_options`` and the Keras head.
HEADS: tuple[str, ...] = (*HEAD_OPTIONS, "keras_dense")
WRITE_CHUNK = 5_000  # rows per transaction when writing predictions: short write locks
SEED = 0


# --- project options ----------------------------------------------------------------------


def project_strategy(project: Project) -> str:
    return (project.settings or {}).get("strategy", DEFAULT_STRATEGY)


def project_retrain_every(project: Project) -> int:
    return int((project.settings or {}).get("retrain_every", DEFAULT_RETRAIN_EVERY))


def project_head(project: Project) -> str:
    return (project.settings or {}).get("head", DEFAULT_HEAD)


def project_strategies(project: Project) -> dict[str, str]:
    """The sampling strategies ``project`` may use, each with its help sentence.

    Tags and classes are queried differently (``learning.tag_query`` and
    ``learning.query``), so the choice follows the project's kind.
    """
    return tag_query.TAG_STRATEGIES if project.multi_label else query.STRATEGIES


def set_training_options(project: Project, *, strategy: str | None = None,
                         retrain_every: int | None = None, head: str | None = None,
                         min_round_interval_s: int | None = None) -> None:
    """Change a project's strategy, retrain cadence (N labels, T seconds) or head.

    Validated, then committed.
    """
    settings = dict(project.settings or {})
    if strategy is not None:
        known = project_strategies(project)
        if strategy not in known:
            kind = "a multi-label" if project.multi_label else "a single-label"
            # A Conflict (the API's 409): the name may be a strategy of the other kind.
            raise Conflict(f"Unknown strategy {strategy!r} for {kind} project; choose "
                           f"one of {', '.join(known)}.")
        settings["strategy"] = strategy
    if retrain_every is not None:
        if retrain_every < 1:
            raise LabelerError("Retrain every N labels needs N of at least 1.")
        settings["retrain_every"] = retrain_every
    if head is not None:
        if head not in HEADS:
            raise LabelerError(f"Unknown head {head!r}; choose one of {', '.join(HEADS)}.")
        settings["head"] = head
    if min_round_interval_s is not None:
        settings["min_round_interval_s"] = check_min_round_interval(min_round_interval_s)
    project.settings = settings
    db.session.commit()


# --- rounds ---------------------------------------------------------------------------------


def labels_until_next_round(project: Project) -> int:
    """How many more labels trigger the next automatic round (0: one is due now).

    A project with embeddings but no round yet is due at once: its first round ranks the
    pool for cold start before anyone has labelled anything.
    """
    # One statement: every label POST asks this.
    last_round = (select(ModelRound.n_labels).where(ModelRound.project_id == project.id)
                  .order_by(ModelRound.number.desc()).limit(1).scalar_subquery())
    labelled = image_count(project.id, labelled=True).scalar_subquery()
    last, count = db.session.execute(select(last_round, labelled)).one()
    if last is None:
        return 0
    return max(0, project_retrain_every(project) - (count - last))


@dataclass
class _Pool:
    """The images a round works on: every image with a vector, in vector-row order."""

    image_ids: np.ndarray  # int64
    embeddings: np.ndarray  # (n, dim) float16, memory-mapped when possible
    label_ids: np.ndarray  # int64 class id, -1 where unlabelled (or class archived)
    store: VectorStore  # where the embeddings came from


def _load_pool(project: Project) -> _Pool:
    rows_by_db = dict(db.session.execute(
        select(Image.id, Image.label_class_id).where(Image.project_id == project.id)).all())
    store, image_ids, embeddings = pool_vectors(
        project, np.fromiter(rows_by_db, dtype=np.int64))
    active = {c.id for c in project.classes if not c.archived}
    labels = np.array([rows_by_db[i] if rows_by_db[i] in active else -1
                       for i in image_ids.tolist()], dtype=np.int64)
    return _Pool(image_ids, embeddings, labels, store)


def _fit_and_measure(project: Project, pool: _Pool) -> dict[str, Any]:
    """Fit and calibrate the head (``learning.round_fit``, as ``simulate`` does); measure it.

    Returns the head to save (temperature folded in), the raw probabilities of the pool
    (the queue ranks by these), its calibrated ones (what auto-tags show), the metrics and
    the suspected label errors, all from one out-of-fold pass.
    """
    names = {c.id: c.name for c in project.classes}
    present = np.unique(pool.label_ids[pool.label_ids >= 0])
    if len(present) < 2:
        # Said here with the class name; the head would only know the class id.
        which = f" ({names.get(int(present[0]), '?')!r})" if len(present) else ""
        raise NotEnoughLabels(
            f"Only one class{which} has labels; label at least one image of another class "
            "before training." if len(present) else
            "No images with embeddings have labels yet; label images of at least two classes.")
    fitted = fit_round(_head_factory(project, pool), pool.embeddings, pool.label_ids, SEED)
    metrics: dict[str, Any] = {"trained": True, "head": project_head(project),
                               "classes": [int(c) for c in fitted.head.classes_]}
    suspects: list[int] = []
    oof = fitted.oof
    if oof is None:
        metrics["cv_note"] = ("Too few labels per class to cross-validate (every class needs "
                              "at least 2); accuracy is shown from the next round on.")
    else:
        measured = label_quality.round_metrics(oof.labels, oof.calibrated, oof.classes)
        metrics.update(_with_class_names(measured, names))
        metrics["calibration"] = calibration_report(fitted)
        metrics["precision_thresholds"] = precision_thresholds(oof)  # keyed by class id
        # cleanlab's confident learning on the out-of-fold probabilities, most doubtful
        # first (the review flow's order).
        errors = label_issues.find_label_issues(oof.calibrated, oof.labels, oof.classes)
        metrics["label_quality"] = _label_quality(
            label_issues.label_health(oof.calibrated, oof.labels, oof.classes), names)
        suspects = [int(pool.image_ids[oof.positions[e.index]]) for e in errors]
        metrics["suspected_errors"] = [
            {"image_id": int(pool.image_ids[oof.positions[e.index]]),
             "given": names.get(int(e.given_label), str(e.given_label)),
             "given_probability": float(e.given_probability),
             "suggested": names.get(int(e.suggested_label), str(e.suggested_label)),
             "suggested_probability": float(e.suggested_probability)}
            for e in errors[:200]]
    proba = fitted.head.predict_proba(pool.embeddings)
    calibrated = (proba if fitted.temperature == 1.0
                  else apply_temperature(proba, fitted.temperature))
    return {"head": fitted.calibrated_head, "proba": proba, "calibrated": calibrated,
            "metrics": metrics, "suspects": suspects}


def _label_quality(health: label_issues.LabelHealth, names: dict[int, str]) -> dict[str, Any]:
    """cleanlab's label health with class names, as the dashboard shows it."""
    return {"overall": health.overall, "per_class": {
        names.get(int(q.label), str(q.label)): {
            "quality": q.quality, "label_issues": q.label_issues, "given": q.given,
            "label_noise": q.label_noise, "inverse_label_noise": q.inverse_label_noise}
        for q in health.per_class}}


def _head_factory(project: Project, pool: _Pool) -> Callable[[], Any]:
    """A maker of the project's head, standardised by the pool (and given its graph)."""
    name = project_head(project)
    if name not in HEAD_OPTIONS:
        return KerasDenseHead
    graph = pool_graph(pool.store, pool.embeddings) if name in NEEDS_GRAPH else None
    return head_factory(name, pool.embeddings, graph, seed=SEED)


def _with_class_names(measured: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    """Replace class ids by class names in the metrics the dashboard shows."""
    def name(key: Any) -> str:
        try:
            return names.get(int(key), str(key))
        except (TypeError, ValueError):
            return str(key)

    renamed = dict(measured)
    if "per_class" in renamed:
        renamed["per_class"] = {name(k): v for k, v in renamed["per_class"].items()}
    if "labels" in renamed:
        renamed["labels"] = [name(k) for k in renamed["labels"]]
    return renamed


def _write_predictions(project: Project, pool: _Pool, number: int, order: np.ndarray,
                       scores: np.ndarray, proba: np.ndarray | None, classes: np.ndarray | None,
                       suspects: list[int], groups: np.ndarray) -> None:
    """Store predictions, scores and queue ranks, a few thousand rows per transaction."""
    rank = np.full(len(pool.image_ids), -1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    if proba is not None and classes is not None:
        best = proba.argmax(axis=1)
        predicted = classes[best]
        confidence = proba[np.arange(len(best)), best]
    suspect_set = set(suspects)
    finite = np.where(np.isfinite(scores), scores, np.nan)
    for start in range(0, len(pool.image_ids), WRITE_CHUNK):
        rows = []
        for i in range(start, min(start + WRITE_CHUNK, len(pool.image_ids))):
            image_id = int(pool.image_ids[i])
            rows.append({
                "id": image_id,
                "predicted_class_id": int(predicted[i]) if proba is not None else None,
                "confidence": float(confidence[i]) if proba is not None else None,
                "acquisition_score": None if np.isnan(finite[i]) else float(finite[i]),
                "queue_rank": int(rank[i]) if rank[i] >= 0 else None,
                "prediction_round": number,
                "suspected_error": image_id in suspect_set,
                "duplicate_group": int(groups[i]) if groups[i] >= 0 else None,
            })
        db.session.execute(update(Image), rows)
        db.session.commit()


def _class_round(progress: Callable[..., None], project: Project, number: int,
                 queue_batch: int) -> tuple[int, dict[str, Any], str]:
    """Train, measure, auto-tag and rank a single-label project's pool.

    Returns:
        (labelled images, the round's metrics, the strategy that ranked the queue).
    """
    progress(0.05, "Loading embeddings", force=True)
    pool = _load_pool(project)
    n_labels = int((pool.label_ids >= 0).sum())
    progress(0.15, f"Training on {n_labels} labels", force=True)
    try:
        fitted = _fit_and_measure(project, pool)
    except NotEnoughLabels as exc:
        fitted = {"head": None, "proba": None, "calibrated": None, "suspects": [],
                  "metrics": {"trained": False, "reason": str(exc)}}
    progress(0.55, "Ranking images for the queue", force=True)
    classes = fitted["head"].classes_ if fitted["head"] is not None else None
    strategy = project_strategy(project)
    if fitted["proba"] is None and strategy not in query.NEEDS_NO_MODEL:
        strategy = "auto"  # uncertainty needs a model; cold start until there is one
    picks = query.rank_pool(
        strategy, n=queue_batch, labelled_mask=pool.label_ids >= 0, proba=fitted["proba"],
        embeddings=pool.embeddings, n_classes=len(project.active_classes()), rng=SEED)
    groups = near_duplicate_groups(pool.store, pool.embeddings)
    progress(0.7, "Writing predictions", force=True)
    # Auto-tags carry the calibrated confidence; the queue was ranked on the raw one.
    _write_predictions(project, pool, number, picks.queue_order(), picks.scores,
                       fitted["calibrated"], classes, fitted["suspects"], groups)
    if fitted["head"] is not None:
        save_head(project.id, number, fitted["head"])
    metrics = fitted["metrics"]
    metrics["duplicate_groups"] = int(len(np.unique(groups[groups >= 0])))
    metrics["pool"] = int(len(pool.image_ids))
    return n_labels, metrics, picks.strategy


def run_round(progress: Callable[..., None], project_id: int, queue_batch: int = 40) -> str:
    """Job: one retrain round of a project. Returns the summary sentence for the Job row."""
    project = db.session.get(Project, project_id)
    if project is None:
        raise LabelerError(f"Project {project_id} no longer exists.")
    started = time.perf_counter()
    number = (db.session.scalar(select(func.max(ModelRound.number))
                                .where(ModelRound.project_id == project.id)) or 0) + 1
    round_ = ModelRound(project_id=project.id, number=number, status=JobStatus.RUNNING,
                        strategy=project_strategy(project),
                        n_labels=count_images(project, labelled=True), metrics={}, message="")
    db.session.add(round_)
    db.session.commit()
    try:
        if project.multi_label:
            n_labels, metrics, strategy = tag_round(progress, project, number,
                                                    project_strategy(project), queue_batch)
        else:
            n_labels, metrics, strategy = _class_round(progress, project, number, queue_batch)
        round_ = db.session.get(ModelRound, round_.id)
        round_.n_labels = n_labels
        round_.metrics = metrics
        round_.strategy = strategy
        round_.duration_s = time.perf_counter() - started
        round_.status = JobStatus.SUCCEEDED if metrics.get("trained") else "skipped"
        round_.message = _summary(round_, metrics)
        db.session.commit()
        _log_round(project, round_)
        return round_.message
    except Exception as exc:
        db.session.rollback()
        failed = db.session.get(ModelRound, round_.id)
        failed.status = JobStatus.FAILED
        failed.duration_s = time.perf_counter() - started
        failed.message = str(exc) if isinstance(exc, LabelerError) else (
            f"{type(exc).__name__}: {exc}")
        db.session.commit()
        _log_round(project, failed)
        raise


def _log_round(project: Project, round_: ModelRound) -> None:
    """One line per round on the server's terminal: labels, accuracy, duration."""
    where = f"Round {round_.number} of project {project.name!r}"
    if round_.status == JobStatus.FAILED:
        log.warning("%s failed after %.1f s: %s", where, round_.duration_s, round_.message)
        return
    if round_.status != JobStatus.SUCCEEDED:
        log.info("%s ranked the pool for cold start in %.1f s; no model trained yet "
                 "(%d labels).", where, round_.duration_s, round_.n_labels)
        return
    log.info("%s trained on %d labels in %.1f s: %s.", where, round_.n_labels,
             round_.duration_s, _measured(round_.metrics))


# How each cold-start strategy orders the queue, in an annotator's words.
_COLD_START_ORDER = {"typical": "typical examples first", "random": "in random order"}


def _measured(metrics: dict[str, Any]) -> str:
    """The round's headline quality: accuracy, or micro-F1 and mAP for tags."""
    if metrics.get("kind") == "multi_label":
        micro_f1, mean_ap = metrics.get("micro_f1"), metrics.get("map")
        if micro_f1 is None:
            return "micro-F1 not measured yet"
        return f"cross-validated micro-F1 {micro_f1:.1%}" + (
            f", mAP {mean_ap:.1%}" if mean_ap is not None else "")
    accuracy = metrics.get("accuracy")
    return (f"cross-validated accuracy {accuracy:.1%}" if accuracy is not None
            else "accuracy not measured yet")


def _summary(round_: ModelRound, metrics: dict[str, Any]) -> str:
    """The round's sentence, also its job's message: what the round did, not just "done"."""
    if not metrics.get("trained"):
        # The job succeeded at what it could do (ranking the pool); say so, and what is
        # missing before a model can be trained.
        order = _COLD_START_ORDER.get(round_.strategy, f"by {round_.strategy}")
        return (f"Round {round_.number}: ranked {metrics['pool']:,} images for cold start "
                f"({order}); no model trained yet. {metrics.get('reason')}")
    return (f"Round {round_.number}: trained on {round_.n_labels} labels, {_measured(metrics)}; "
            f"{metrics['pool']:,} images auto-tagged and re-ranked ({round_.strategy}).")
