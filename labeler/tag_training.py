"""A retrain round of a multi-label project: tag heads, thresholds, auto-tags, queue.

``training.run_round`` keeps the round's bookkeeping (its row, failure, summary) and hands
multi-label projects to :func:`tag_round`, the twin of its single-label middle: the 0/1
tag matrix ``Y`` of the labelled images (an explicit empty set is a labelled row of
zeros) from ``image_tag``, one :func:`~labeler.learning.tags.fit_tag_round` (heads, one
out-of-fold pass, F1-best thresholds, metrics), every image's per-tag probabilities into
``image_tag_score``, ``image.confidence`` as the probability that the predicted set is
exactly right, per-tag suspected errors (cleanlab) and the queue ranked by the tag
strategies with the same cold start and diversity as classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select, update

from .extensions import db
from .learning import tag_query
from .learning.heads import NotEnoughLabels
from .learning.tag_issues import find_tag_issues
from .learning.tags import fit_tag_round, set_confidence
from .models import Image, ImageTag, ImageTagScore, Project
from .pool_derived import near_duplicate_groups
from .project_vectors import pool_vectors
from .rounds import save_head
from .vectors import VectorStore

WRITE_CHUNK = 2_000  # images per transaction (each with one score row per tag)
SEED = 0


@dataclass
class TagPool:
    """Every image with a vector, in vector-row order, with its tags as a 0/1 matrix."""

    image_ids: np.ndarray  # int64
    embeddings: np.ndarray  # (n, dim) float16, memory-mapped when possible
    Y: np.ndarray  # (n, n_tags) uint8; rows of unlabelled images are zeros
    labelled: np.ndarray  # bool: the image has a tag set (possibly empty)
    tag_ids: list[int]  # class id of each column: the active tags, in display order
    tag_names: list[str]
    store: VectorStore


def load_tag_pool(project: Project) -> TagPool:
    """The round's pool and labels (archived tags are left out of the columns)."""
    tagged = dict(db.session.execute(select(Image.id, Image.tagged_at.is_not(None))
                                     .where(Image.project_id == project.id)).all())
    store, image_ids, embeddings = pool_vectors(project, np.fromiter(tagged, dtype=np.int64))
    tags = project.active_classes()
    column = {tag.id: t for t, tag in enumerate(tags)}
    position = {int(image_id): i for i, image_id in enumerate(image_ids.tolist())}
    Y = np.zeros((len(image_ids), len(tags)), dtype=np.uint8)
    for image_id, class_id in db.session.execute(
            select(ImageTag.image_id, ImageTag.label_class_id)
            .join(Image, Image.id == ImageTag.image_id)
            .where(Image.project_id == project.id)):
        if image_id in position and class_id in column:
            Y[position[image_id], column[class_id]] = 1
    labelled = np.array([bool(tagged[i]) for i in image_ids.tolist()], dtype=bool)
    return TagPool(image_ids, embeddings, Y, labelled, [t.id for t in tags],
                   [t.name for t in tags], store)


def _fit(pool: TagPool) -> dict[str, Any]:
    """Heads, thresholds, metrics and suspected errors of the pool's labels."""
    if not pool.tag_ids:
        raise NotEnoughLabels("The project has no active tags; add tags before training.")
    if not pool.labelled.any():
        raise NotEnoughLabels("No images with embeddings have tags yet; tag a few images "
                              "(none of the tags is an answer too).")
    fitted = fit_tag_round(pool.embeddings, pool.Y, pool.labelled, tags=pool.tag_names,
                           rng=SEED)
    fitted.head.tags_ = np.asarray(pool.tag_ids, dtype=np.int64)  # ids survive a rename
    metrics: dict[str, Any] = {**fitted.metrics, "trained": True, "head": "tag_logistic",
                               "tags": list(pool.tag_ids)}
    suspects: list[int] = []
    if fitted.oof is None:
        metrics["cv_note"] = ("Too few tagged images to cross-validate (at least 4 are "
                              "needed); thresholds are 0.5 until then.")
    else:
        errors = find_tag_issues(fitted.oof.labels, fitted.oof.proba, pool.tag_names)
        suspects = sorted({int(pool.image_ids[fitted.oof.positions[e.index]])
                           for e in errors})
        metrics["suspected_errors"] = [
            {"image_id": int(pool.image_ids[fitted.oof.positions[e.index]]), "tag": str(e.tag),
             "given": int(e.given), "given_probability": float(e.given_probability)}
            for e in errors[:200]]
    return {"head": fitted.head, "thresholds": fitted.thresholds, "metrics": metrics,
            "proba": fitted.head.predict_proba(pool.embeddings), "suspects": suspects}


def _write(pool: TagPool, number: int, order: np.ndarray, scores: np.ndarray,
           proba: np.ndarray | None, thresholds: np.ndarray | None, suspects: list[int],
           groups: np.ndarray) -> None:
    """Image rows and per-tag scores, a few thousand images per transaction."""
    rank = np.full(len(pool.image_ids), -1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    confidence = set_confidence(proba, thresholds) if proba is not None else None
    finite = np.where(np.isfinite(scores), scores, np.nan)
    suspect_set = set(suspects)
    for start in range(0, len(pool.image_ids), WRITE_CHUNK):
        chunk = range(start, min(start + WRITE_CHUNK, len(pool.image_ids)))
        ids = [int(pool.image_ids[i]) for i in chunk]
        db.session.execute(update(Image), [{
            "id": ids[k], "predicted_class_id": None,
            "confidence": float(confidence[i]) if confidence is not None else None,
            "acquisition_score": None if np.isnan(finite[i]) else float(finite[i]),
            "queue_rank": int(rank[i]) if rank[i] >= 0 else None,
            "prediction_round": number, "suspected_error": ids[k] in suspect_set,
            "duplicate_group": int(groups[i]) if groups[i] >= 0 else None,
        } for k, i in enumerate(chunk)])
        if proba is not None:
            db.session.execute(delete(ImageTagScore).where(ImageTagScore.image_id.in_(ids)))
            db.session.execute(insert(ImageTagScore), [
                {"image_id": ids[k], "label_class_id": tag_id, "probability": float(proba[i, t])}
                for k, i in enumerate(chunk) for t, tag_id in enumerate(pool.tag_ids)])
        db.session.commit()


def tag_round(progress: Callable[..., None], project: Project, number: int, strategy: str,
              queue_batch: int) -> tuple[int, dict[str, Any], str]:
    """Train, measure, auto-tag and rank a multi-label project's pool.

    Returns:
        (labelled images, the round's metrics, the strategy that ranked the queue).
    """
    progress(0.05, "Loading embeddings", force=True)
    pool = load_tag_pool(project)
    n_labels = int(pool.labelled.sum())
    progress(0.15, f"Training on {n_labels} tagged images", force=True)
    try:
        fitted = _fit(pool)
    except NotEnoughLabels as exc:
        fitted = {"head": None, "thresholds": None, "proba": None, "suspects": [],
                  "metrics": {"kind": "multi_label", "trained": False, "reason": str(exc)}}
    progress(0.55, "Ranking images for the queue", force=True)
    if strategy not in tag_query.TAG_STRATEGIES or (
            fitted["proba"] is None and strategy.removesuffix("_diverse") in tag_query.TAG_SCORES):
        strategy = "auto"  # a class strategy, or uncertainty before there is a model
    picks = tag_query.rank_tag_pool(
        strategy, n=queue_batch, labelled_mask=pool.labelled, proba=fitted["proba"],
        thresholds=fitted["thresholds"], embeddings=pool.embeddings,
        n_tags=len(pool.tag_ids), rng=SEED)
    groups = near_duplicate_groups(pool.store, pool.embeddings)
    progress(0.7, "Writing predictions", force=True)
    _write(pool, number, picks.queue_order(), picks.scores, fitted["proba"],
           fitted["thresholds"], fitted["suspects"], groups)
    if fitted["head"] is not None:
        save_head(project.id, number, fitted["head"])
    metrics = fitted["metrics"]
    metrics["duplicate_groups"] = int(len(np.unique(groups[groups >= 0])))
    metrics["pool"] = int(len(pool.image_ids))
    return n_labels, metrics, picks.strategy
