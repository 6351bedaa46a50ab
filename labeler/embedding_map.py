"""The embedding map: every embedded image of a project as a 2-D point, and its cache.

Served by ``GET /api/v1/projects/<id>/map``. The answer is columnar (``points.x``,
``points.y``, ... are parallel lists), so a map of 100,000 images stays a few megabytes.
The projection is cached per project, embedding space and row count under
``LABELER_HOME/maps/<project_id>/``: a reload is instant, and it is recomputed once the
embed job has appended new vectors (the row count changed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from .errors import Conflict, LabelerError
from .extensions import db
from .learning.projection import METHODS, Projection, layout_2d, umap_available
from .models import Image, Project
from .project_vectors import current_vectors
from .storage import atomic_writer, data_root
from .vectors import VectorStore

EMPTY_MESSAGE = ("This project has no embeddings yet, so there is nothing to map. Import images, "
                 "then run `labeler embed {name}` (the server also embeds newly imported images); "
                 "reload this page when it has finished.")


def cache_folder(project_id: int) -> Path:
    """Where a project's cached projections live."""
    return data_root() / "maps" / str(int(project_id))


def _cache_base(project_id: int, store: VectorStore, method: str, rows: int) -> Path:
    return cache_folder(project_id) / f"{store.space.key}_{method}_{rows}"


def cached_projection(project_id: int, store: VectorStore, method: str = "pca") -> Projection:
    """The projection of all rows of ``store``, from the cache or computed (and cached).

    Keyed by embedding space, method and row count; older entries of the project are
    removed when a new one is written.
    """
    rows = len(store)
    base = _cache_base(project_id, store, method, rows)
    # Not with_suffix: a space key may contain dots (version "1.0").
    coords_path = base.parent / f"{base.name}.npy"
    meta_path = base.parent / f"{base.name}.json"
    if coords_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        coords = np.load(coords_path)
        if coords.shape == (rows, 2):
            return Projection(coords, meta["method"], meta["explained_variance"])
    result = layout_2d(store.matrix(), method=method)
    base.parent.mkdir(parents=True, exist_ok=True)
    for old in base.parent.iterdir():
        # Drop stale entries: this method at another row count, or another (old) space.
        # Keep the other method's entry, and any file another request is still writing
        # (atomic_writer's temporary files are hidden: their names start with a dot).
        stale = (old.name.startswith(f"{store.space.key}_{method}_")
                 or not old.name.startswith(f"{store.space.key}_"))
        writing = old.name.startswith(".")
        if stale and not writing and old.name not in {coords_path.name, meta_path.name}:
            old.unlink(missing_ok=True)
    # Two requests may compute the same map at once; a reader must never see half a file.
    with atomic_writer(coords_path) as stream:
        np.save(stream, result.coords)
    meta = {"method": result.method, "explained_variance": result.explained_variance}
    with atomic_writer(meta_path) as stream:
        stream.write(json.dumps(meta).encode())
    return result


def _image_columns(project_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image ids, label class ids, predicted class ids), -1 for none, sorted by id."""
    rows = db.session.execute(
        select(Image.id, Image.label_class_id, Image.predicted_class_id)
        .where(Image.project_id == project_id).order_by(Image.id)).all()
    table = np.array([(i, -1 if lab is None else lab, -1 if pred is None else pred)
                      for i, lab, pred in rows], dtype=np.int64).reshape(-1, 3)
    return table[:, 0], table[:, 1], table[:, 2]


def map_payload(p: Project, method: str = "pca") -> dict[str, Any]:
    """The map of project ``p`` as a JSON-ready dict (see the module docstring)."""
    classes = [{"id": c.id, "name": c.name, "colour": c.colour, "archived": c.archived}
               for c in p.classes]
    image_ids, labels, predicted = _image_columns(p.id)
    store = current_vectors(p)
    payload: dict[str, Any] = {
        "method": method, "explained_variance": [], "classes": classes,
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
    result = cached_projection(p.id, store, method)
    coords = result.coords[rows[keep]].astype(np.float64)
    payload.update(
        method=result.method, explained_variance=result.explained_variance, empty=False,
        points={"image_id": image_ids[keep].tolist(),
                # 4 significant decimals are far below a pixel and keep the JSON small.
                "x": np.round(coords[:, 0], 4).tolist(), "y": np.round(coords[:, 1], 4).tolist(),
                "label": labels[keep].tolist(), "predicted": predicted[keep].tolist()})
    if int(keep.sum()) < len(image_ids):
        payload["message"] = (f"{int(keep.sum())} of {len(image_ids)} images have embeddings; "
                              f"the rest appear once `labeler embed {p.name}` has run.")
    return payload


def check_method(method: str) -> None:
    """Refuse a projection method that does not exist or cannot run here (a sentence why)."""
    if method not in METHODS:
        raise LabelerError("The method must be 'pca' or 'umap'.")
    if method == "umap" and not umap_available():
        raise Conflict("UMAP needs the optional umap-learn package; install it with "
                           "`pip install umap-learn`, or use the default PCA.")
