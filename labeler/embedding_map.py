"""The embedding map: every embedded image of a project as a 2-D point, and its layouts.

Served by ``GET /api/v1/projects/<id>/map``. The answer is columnar (``points.x``,
``points.y``, ... are parallel lists), so a map of 100,000 images stays a few megabytes.

Two layouts (:mod:`labeler.learning.projection`): PCA, computed in the request (about a
second at 100,000 images), and t-SNE, which keeps similar images together but takes
seconds to minutes, so :func:`compute_tsne_layout` runs as a background job (kind
``map``) whenever a project's vectors change, and the map shows PCA until it is ready.
Both are cached per project, embedding space and row count under
``LABELER_HOME/maps/<project_id>/``, written atomically: a reload is instant, and a layout
of fewer rows than the store now holds is never shown (new vectors need a new layout).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from .errors import LabelerError
from .extensions import db
from .learning.projection import MIN_TSNE_ROWS, Projection, layout_2d
from .models import Image, Project
from .project_vectors import current_vectors
from .storage import atomic_writer, data_root
from .vectors import VectorStore

EMPTY_MESSAGE = ("This project has no embeddings yet, so there is nothing to map. Import images, "
                 "then run `labeler embed {name}` (the server also embeds newly imported images); "
                 "reload this page when it has finished.")
# What ``?method=`` may ask for: the best layout that is ready (t-SNE, else PCA), or PCA.
METHODS = ("auto", "pca")
# The t-SNE layout's state in a payload: ready; not computed for these vectors (the caller
# queues the job, then says "computing" or "failed"); or t-SNE cannot serve (too few rows).
TSNE_READY, TSNE_MISSING, TSNE_UNAVAILABLE = "ready", "missing", "unavailable"
TSNE_COMPUTING, TSNE_FAILED = "computing", "failed"


def cache_folder(project_id: int) -> Path:
    """Where a project's cached layouts live."""
    return data_root() / "maps" / str(int(project_id))


def _cache_paths(project_id: int, store: VectorStore, method: str,
                 rows: int) -> tuple[Path, Path]:
    base = f"{store.space.key}_{method}_{rows}"
    # Not with_suffix: a space key may contain dots (version "1.0").
    folder = cache_folder(project_id)
    return folder / f"{base}.npy", folder / f"{base}.json"


def read_layout(project_id: int, store: VectorStore, method: str,
                rows: int) -> Projection | None:
    """The cached layout ``method`` of the first ``rows`` vectors, or None if there is none.

    A damaged entry counts as none: it is computed again.
    """
    coords_path, meta_path = _cache_paths(project_id, store, method, rows)
    try:
        meta = json.loads(meta_path.read_text())
        coords = np.load(coords_path, allow_pickle=False)
        result = Projection(coords, str(meta["method"]), list(meta["explained_variance"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return result if coords.shape == (rows, 2) else None


def _write_layout(project_id: int, store: VectorStore, method: str, rows: int,
                  result: Projection) -> None:
    """Cache a layout, dropping this method's older entries (other row counts or spaces)."""
    coords_path, meta_path = _cache_paths(project_id, store, method, rows)
    coords_path.parent.mkdir(parents=True, exist_ok=True)
    for old in coords_path.parent.iterdir():
        # Keep the other method's entries of this space, and any file another process is
        # still writing (atomic_writer's temporary files are hidden: names start with a dot).
        stale = (old.name.startswith(f"{store.space.key}_{method}_")
                 or not old.name.startswith(f"{store.space.key}_"))
        writing = old.name.startswith(".")
        if stale and not writing and old.name not in {coords_path.name, meta_path.name}:
            old.unlink(missing_ok=True)
    # Two requests may compute the same map at once; a reader must never see half a file.
    # The metadata goes last: an entry counts only when both files are there.
    with atomic_writer(coords_path) as stream:
        np.save(stream, result.coords)
    meta = {"method": result.method, "explained_variance": result.explained_variance}
    with atomic_writer(meta_path) as stream:
        stream.write(json.dumps(meta).encode())


def cached_projection(project_id: int, store: VectorStore) -> Projection:
    """The PCA projection of all rows of ``store``, from the cache or computed (and cached)."""
    rows = len(store)
    cached = read_layout(project_id, store, "pca", rows)
    if cached is not None:
        return cached
    result = layout_2d(store.matrix()[:rows], method="pca")
    _write_layout(project_id, store, "pca", rows, result)
    return result


def tsne_threads() -> int:
    """Threads the t-SNE job may use: half the machine, as annotators share it."""
    return max(1, (os.cpu_count() or 2) // 2)


def compute_tsne_layout(progress: Callable[..., None], project_id: int) -> str:
    """Job: the t-SNE layout of the project's current vectors, cached for the map.

    Returns:
        The sentence the job's status shows.
    """
    project = db.session.get(Project, project_id)
    if project is None:
        raise LabelerError(f"Project {project_id} no longer exists.")
    store = current_vectors(project)
    rows = 0 if store is None else len(store)
    if store is None or rows == 0:
        return "No embeddings yet, so there is nothing to lay out."
    if read_layout(project.id, store, "tsne", rows) is not None:
        return f"The t-SNE layout of {rows:,} images is up to date."
    progress(0.05, f"Laying out {rows:,} images by t-SNE", force=True)
    started = time.perf_counter()
    # Rows appended while this runs belong to the next layout (the next embed queues it).
    result = layout_2d(store.matrix()[:rows], method="tsne", n_jobs=tsne_threads())
    # Cached under "tsne" even when t-SNE could not serve (too few rows), so the map knows.
    _write_layout(project.id, store, "tsne", rows, result)
    if result.method != "tsne":
        return (f"{rows:,} images are too few or too alike for a t-SNE layout; the map "
                "shows PCA.")
    return f"Laid out {rows:,} images by t-SNE in {time.perf_counter() - started:.0f} s."


def _image_columns(project_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image ids, label class ids, predicted class ids), -1 for none, sorted by id."""
    rows = db.session.execute(
        select(Image.id, Image.label_class_id, Image.predicted_class_id)
        .where(Image.project_id == project_id).order_by(Image.id)).all()
    table = np.array([(i, -1 if lab is None else lab, -1 if pred is None else pred)
                      for i, lab, pred in rows], dtype=np.int64).reshape(-1, 3)
    return table[:, 0], table[:, 1], table[:, 2]


def _chosen_layout(p: Project, store: VectorStore, method: str) -> tuple[Projection, str]:
    """(the layout to show, the t-SNE state) for ``?method=``."""
    rows = len(store)
    tsne = read_layout(p.id, store, "tsne", rows)
    if tsne is None:
        state = TSNE_UNAVAILABLE if rows < MIN_TSNE_ROWS else TSNE_MISSING
    else:
        state = TSNE_READY if tsne.method == "tsne" else TSNE_UNAVAILABLE
    if method == "auto" and tsne is not None and state == TSNE_READY:
        return tsne, state
    return cached_projection(p.id, store), state


def map_payload(p: Project, method: str = "auto") -> dict[str, Any]:
    """The map of project ``p`` as a JSON-ready dict (see the module docstring).

    ``method`` is ``"auto"`` (t-SNE when its layout is ready, else PCA) or ``"pca"``;
    ``method`` in the answer says which was used, ``tsne`` the state of the t-SNE layout
    (:data:`TSNE_READY`, :data:`TSNE_MISSING` or :data:`TSNE_UNAVAILABLE`).
    """
    classes = [{"id": c.id, "name": c.name, "colour": c.colour, "archived": c.archived}
               for c in p.classes]
    image_ids, labels, predicted = _image_columns(p.id)
    store = current_vectors(p)
    payload: dict[str, Any] = {
        "method": "pca", "tsne": TSNE_UNAVAILABLE, "explained_variance": [],
        "classes": classes,
        "images": int(len(image_ids)), "empty": True, "message": "",
        "points": {"image_id": [], "x": [], "y": [], "label": [], "predicted": []},
    }
    if store is None or len(store) == 0 or len(image_ids) == 0:
        payload["message"] = EMPTY_MESSAGE.format(name=p.name)
        return payload
    rows = store.rows_for(image_ids)  # latest row of each image; -1 where none yet
    keep = rows >= 0
    if not keep.any():
        payload["message"] = EMPTY_MESSAGE.format(name=p.name)
        return payload
    result, tsne_state = _chosen_layout(p, store, method)
    keep &= rows < len(result.coords)  # rows appended since the store was read wait
    coords = result.coords[rows[keep]].astype(np.float64)
    payload.update(
        method=result.method, tsne=tsne_state, explained_variance=result.explained_variance,
        empty=False,
        points={"image_id": image_ids[keep].tolist(),
                # 4 significant decimals are far below a pixel and keep the JSON small.
                "x": np.round(coords[:, 0], 4).tolist(), "y": np.round(coords[:, 1], 4).tolist(),
                "label": labels[keep].tolist(), "predicted": predicted[keep].tolist()})
    if int(keep.sum()) < len(image_ids):
        payload["message"] = (f"{int(keep.sum())} of {len(image_ids)} images have embeddings; "
                              f"the rest appear once `labeler embed {p.name}` has run.")
    return payload


def check_method(method: str) -> None:
    """Refuse a layout that the map does not offer (a sentence why)."""
    if method not in METHODS:
        raise LabelerError("The method must be 'auto' (t-SNE once it is computed, PCA until "
                           "then) or 'pca'; leave it out for 'auto'.")
