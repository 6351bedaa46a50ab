""""Why this image": what made the queue serve an image, for the labelling page and API."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .cache import LABELLED_INDEX, ROUND_STRATEGY, app_cache
from .extensions import db
from .models import Annotation, Image, JobStatus, ModelRound, Project
from .project_vectors import current_vectors
from .queue import SKIPPED_BASE
from .reasons import IMPORT_ORDER, describe
from .rounds import load_head
from .vectors import VectorStore

NEIGHBOURS = 3
CANDIDATES = 32  # from the cached index, so labels undone since the build can drop out
LABELLED_INDEX_TTL_S = 5.0
TOP_CLASSES = 3


def _labelled_ids(project: Project) -> np.ndarray:
    return np.array(db.session.scalars(
        db.select(Image.id)
        .where(Image.project_id == project.id, Image.label_class_id.is_not(None))).all(),
        dtype=np.int64)


@dataclass(frozen=True)
class _LabelledIndex:
    built_at: float
    last_annotation_id: int  # every annotation up to this one is reflected in ``ids``
    ids: np.ndarray  # image ids with a label and a vector
    unit: np.ndarray  # their vectors, L2-normalised (float32)


def _labelled_index(project: Project, store: VectorStore) -> _LabelledIndex:
    """The labelled images' unit vectors, rebuilt at most every LABELLED_INDEX_TTL_S.

    Every ``next`` request explains its image; gathering thousands of labelled vectors
    for each one would cost more than serving the image. What changed since the build is
    added exactly at query time (``_nearest_labelled``), so the answer is never stale.
    """
    cache = app_cache()
    key = (project.id, store.space.key, len(store))
    now = time.monotonic()
    cached = cache.get(LABELLED_INDEX, key)
    if cached is not None and now - cached.built_at < LABELLED_INDEX_TTL_S:
        return cached
    # One thread rebuilds; the others keep serving the previous index meanwhile, instead
    # of all eight request threads gathering the same thousands of vectors at once.
    rebuilding = cache.build_lock("labelled-index")
    if cached is not None and not rebuilding.acquire(blocking=False):
        return cached
    try:
        index = _build_labelled_index(project, store, now)
        # One index per store: those of older row counts are dead.
        cache.put(LABELLED_INDEX, key, index, replacing=lambda k: k[:2] == key[:2])
        return index
    finally:
        if cached is not None:
            rebuilding.release()


def _build_labelled_index(project: Project, store: VectorStore, now: float) -> _LabelledIndex:
    # Read the newest annotation id first: anything later is picked up as a change.
    last_annotation_id = _last_annotation_id(project.id)
    ids = _labelled_ids(project)
    if len(ids):
        ids = ids[store.rows_for(ids) >= 0]
    return _LabelledIndex(now, last_annotation_id, ids, _unit_vectors(store, ids))


def _last_annotation_id(project_id: int) -> int:
    return db.session.scalar(db.select(db.func.max(Annotation.id))
                             .where(Annotation.project_id == project_id)) or 0


def _unit_vectors(store: VectorStore, ids: np.ndarray) -> np.ndarray:
    if not len(ids):
        return np.empty((0, store.space.dim), np.float32)
    vectors = store.vectors_for(ids)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _nearest_labelled(project: Project, store: VectorStore, vector: np.ndarray,
                      names: dict[int, str]) -> list[dict[str, Any]]:
    """The NEIGHBOURS labelled images most like ``vector``, with their current labels.

    The cached index gives candidates; images labelled since it was built are added, and
    every candidate's label is read afresh, so labels given, changed or undone a moment
    ago show correctly. Two small queries, whatever the number of labels.
    """
    index = _labelled_index(project, store)
    query = vector / max(float(np.linalg.norm(vector)), 1e-12)
    # By id range alone, then the project in Python: a range of the primary key reads only
    # the few newest rows, where "project_id = ? AND id > ?" may make the planner walk
    # every annotation of the project through the project index.
    recent = np.array([image_id for image_id, project_id in db.session.execute(
        db.select(Annotation.image_id, Annotation.project_id)
        .where(Annotation.id > index.last_annotation_id)) if project_id == project.id],
        dtype=np.int64)
    if len(recent):
        recent = np.unique(recent)
        recent = recent[store.rows_for(recent) >= 0]
    candidates, similarity = np.empty(0, np.int64), np.empty(0, np.float32)
    if len(index.ids):  # a few spare candidates replace cached ones undone meanwhile
        scores = index.unit @ query
        top = np.argpartition(-scores, min(CANDIDATES, len(scores)) - 1)[:CANDIDATES]
        candidates, similarity = index.ids[top], scores[top]
    if len(recent):
        candidates = np.concatenate([candidates, recent])
        similarity = np.concatenate([similarity, _unit_vectors(store, recent) @ query])
    if not len(candidates):
        return []
    current = dict(db.session.execute(
        db.select(Image.id, Image.label_class_id)
        .where(Image.id.in_([int(i) for i in candidates]),
               Image.label_class_id.is_not(None))).all())
    neighbours: dict[int, dict[str, Any]] = {}
    for position in np.argsort(-similarity):
        image_id = int(candidates[position])
        if image_id in current and image_id not in neighbours:
            neighbours[image_id] = {"image_id": image_id,
                                    "label": names.get(current[image_id], "?"),
                                    "similarity": float(similarity[position])}
            if len(neighbours) == NEIGHBOURS:
                break
    return list(neighbours.values())


def _round_strategy(project_id: int, number: int) -> tuple[str, bool] | None:
    """The strategy of a round that ranked images, and whether it trained a model.

    Cached once the round has ended: what it was never changes after. (Images get their
    round number while the round still writes, when its strategy may not be final yet.)
    """
    cache = app_cache()
    found = cache.get(ROUND_STRATEGY, (project_id, number))
    if found is not None:
        return found
    row = db.session.execute(db.select(ModelRound.strategy, ModelRound.status).where(
        ModelRound.project_id == project_id, ModelRound.number == number)).first()
    if row is None:
        return None
    found = (row.strategy, row.status == JobStatus.SUCCEEDED.value)
    if row.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        cache.put(ROUND_STRATEGY, (project_id, number), found)
    return found


_LOAD = object()  # explain(head=...) not given: load the active round's head


def explain(project: Project, image: Image, head: Any = _LOAD,
            names: dict[int, str] | None = None) -> dict[str, Any]:
    """Why ``image`` is in the annotator's queue, and what the model thinks of it.

    Returns:
        ``{"strategy", "score", "queue_rank", "round", "round_trained", "summary",
        "probabilities": [{"label", "probability"}], "neighbours": [{"image_id", "label",
        "similarity"}], "note"}``. ``summary`` says why in words an annotator understands;
        ``round_trained`` is whether the ranking round trained a model (a cold-start round
        does not). Parts that do not exist yet (no round, no embedding) are empty, and
        ``note`` says why in a sentence.
    """
    ranked_by = (_round_strategy(project.id, image.prediction_round)
                 if image.prediction_round else None)
    reason: dict[str, Any] = {
        "strategy": ranked_by[0] if ranked_by else IMPORT_ORDER,
        "score": image.acquisition_score,
        "queue_rank": image.queue_rank,
        "round": image.prediction_round,
        "round_trained": ranked_by[1] if ranked_by else None,
        "summary": "",
        "probabilities": [],
        "neighbours": [],
        "note": "",
    }
    if image.queue_rank is not None and image.queue_rank >= SKIPPED_BASE:
        reason["note"] = "Skipped earlier; back in the queue until the next round."
    # (An unranked image, queue_rank >= UNRANKED_BASE, is what the summary itself says.)
    _add_model_view(project, image, head, names, reason)
    reason["summary"] = describe(reason["strategy"], reason["probabilities"])
    return reason


def _add_model_view(project: Project, image: Image, head: Any, names: dict[int, str] | None,
                    reason: dict[str, Any]) -> None:
    """Add the model's top classes and the nearest labelled images, where they exist."""
    store = current_vectors(project)
    if store is None or store.rows_for([image.id])[0] < 0:
        reason["note"] = reason["note"] or "Its embedding is still being computed."
        return
    vector = store.vectors_for([image.id])
    names = names if names is not None else {c.id: c.name for c in project.classes}
    head = load_head(project) if head is _LOAD else head  # None: there is no model yet
    if head is not None:
        proba = head.predict_proba(vector)[0]
        top = np.argsort(-proba)[:TOP_CLASSES]
        reason["probabilities"] = [
            {"label": names.get(int(head.classes_[i]), str(head.classes_[i])),
             "probability": float(proba[i])} for i in top]
    reason["neighbours"] = _nearest_labelled(project, store, vector[0], names)
