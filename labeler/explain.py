""""Why this image": what made the queue serve an image, for the labelling page and API."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .embedder import current_vectors
from .extensions import db
from .models import Image, ModelRound, Project
from .queue import SKIPPED_BASE, UNRANKED_BASE
from .training import load_head
from .vectors import VectorStore

NEIGHBOURS = 3
LABELLED_INDEX_TTL_S = 5.0
TOP_CLASSES = 3


def _labelled_ids(project: Project) -> tuple[np.ndarray, np.ndarray]:
    rows = db.session.execute(
        db.select(Image.id, Image.label_class_id)
        .where(Image.project_id == project.id, Image.label_class_id.is_not(None))).all()
    return (np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows], dtype=np.int64))


@dataclass(frozen=True)
class _LabelledIndex:
    built_at: float
    ids: np.ndarray  # image ids with a label and a vector
    labels: np.ndarray  # their class ids
    unit: np.ndarray  # their vectors, L2-normalised (float32)


_labelled_indexes: dict[tuple[str, int], _LabelledIndex] = {}
_labelled_lock = threading.Lock()
_rebuilding = threading.Lock()
_round_strategies: dict[tuple[str, int, int], str] = {}


def _labelled_index(project: Project, store: VectorStore) -> _LabelledIndex:
    """The labelled images' unit vectors, rebuilt at most every LABELLED_INDEX_TTL_S.

    Every ``next`` request explains its image; gathering thousands of labelled vectors
    for each one would cost more than serving the image. Neighbours may therefore miss
    labels given in the last few seconds, which is fine for an explanation.
    """
    key = (str(store.ids_path), len(store))
    now = time.monotonic()
    with _labelled_lock:
        cached = _labelled_indexes.get(key)
    if cached is not None and now - cached.built_at < LABELLED_INDEX_TTL_S:
        return cached
    # One thread rebuilds; the others keep serving the previous index meanwhile, instead
    # of all eight request threads gathering the same thousands of vectors at once.
    if cached is not None and not _rebuilding.acquire(blocking=False):
        return cached
    try:
        return _build_labelled_index(project, store, key, now)
    finally:
        if cached is not None:
            _rebuilding.release()


def _build_labelled_index(project: Project, store: VectorStore, key: tuple[str, int],
                          now: float) -> _LabelledIndex:
    ids, labels = _labelled_ids(project)
    if len(ids):
        have = store.rows_for(ids) >= 0
        ids, labels = ids[have], labels[have]
    vectors = store.vectors_for(ids) if len(ids) else np.empty((0, store.space.dim), np.float32)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    index = _LabelledIndex(now, ids, labels, unit)
    with _labelled_lock:
        for stale in [k for k in _labelled_indexes if k[0] == key[0]]:
            del _labelled_indexes[stale]  # one index per store: older row counts are dead
        _labelled_indexes[key] = index
    return index


def _round_strategy(project_id: int, number: int) -> str | None:
    """The strategy of a round that predicted images (cached: it never changes after)."""
    key = (db.engine.url.render_as_string(), project_id, number)
    with _labelled_lock:
        if key in _round_strategies:
            return _round_strategies[key]
    strategy = db.session.scalar(db.select(ModelRound.strategy).where(
        ModelRound.project_id == project_id, ModelRound.number == number))
    if strategy is not None:
        with _labelled_lock:
            _round_strategies[key] = strategy
    return strategy


_LOAD = object()  # explain(head=...) not given: load the active round's head


def explain(project: Project, image: Image, head: Any = _LOAD,
            names: dict[int, str] | None = None) -> dict[str, Any]:
    """Why ``image`` is in the annotator's queue, and what the model thinks of it.

    Returns:
        ``{"strategy", "score", "queue_rank", "round", "probabilities": [{"label",
        "probability"}], "neighbours": [{"image_id", "label", "similarity"}], "note"}``.
        Parts that do not exist yet (no round, no embedding) are empty, and ``note`` says
        why in a sentence.
    """
    strategy = (_round_strategy(project.id, image.prediction_round)
                if image.prediction_round else None)
    reason: dict[str, Any] = {
        "strategy": strategy or "import order",
        "score": image.acquisition_score,
        "queue_rank": image.queue_rank,
        "round": image.prediction_round,
        "probabilities": [],
        "neighbours": [],
        "note": "",
    }
    if image.queue_rank is not None and image.queue_rank >= SKIPPED_BASE:
        reason["note"] = "Skipped earlier; back in the queue until the next round."
    elif image.queue_rank is not None and image.queue_rank >= UNRANKED_BASE:
        reason["note"] = "Not ranked by a round yet: served in import order."
    store = current_vectors(project)
    if store is None or store.rows_for([image.id])[0] < 0:
        reason["note"] = reason["note"] or "Not embedded yet: served in import order."
        return reason
    vector = store.vectors_for([image.id])
    names = names if names is not None else {c.id: c.name for c in project.classes}
    head = load_head(project) if head is _LOAD else head  # None: there is no model yet
    if head is not None:
        proba = head.predict_proba(vector)[0]
        top = np.argsort(-proba)[:TOP_CLASSES]
        reason["probabilities"] = [
            {"label": names.get(int(head.classes_[i]), str(head.classes_[i])),
             "probability": float(proba[i])} for i in top]
    labelled = _labelled_index(project, store)
    if len(labelled.ids):
        query = vector[0] / max(float(np.linalg.norm(vector[0])), 1e-12)
        similarity = labelled.unit @ query
        count = min(NEIGHBOURS, len(similarity))
        nearest = np.argpartition(-similarity, count - 1)[:count]
        nearest = nearest[np.argsort(-similarity[nearest])]
        reason["neighbours"] = [
            {"image_id": int(labelled.ids[i]), "label": names.get(int(labelled.labels[i]), "?"),
             "similarity": float(similarity[i])} for i in nearest]
    return reason
