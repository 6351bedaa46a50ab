"""A project's embeddings: its backbone and vector store, and the embed job.

Shared by the CLI, the server and the workers. Which backbones exist is the registry's
business (``labeler.embeddings.registry``); this module knows which one a project uses.

Resumable by construction: the job embeds only images whose id is not yet in the
project's vector store, and the store makes each appended batch durable before it counts.
Kill it at any point and run it again; it picks up where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Protocol

import numpy as np
from flask import current_app
from sqlalchemy import select

from .cache import app_cache
from .embeddings.registry import shared_backbone
from .errors import LabelerError
from .extensions import db
from .models import Image, Project
from .projects import count_images
from .storage import BlobStore, data_root
from .vectors import EmbeddingSpace, VectorStore

log = logging.getLogger(__name__)

class EmbeddingBackbone(Protocol):
    """What the embed job needs of a backbone (``labeler.embeddings.Backbone`` has it)."""

    spec: object

    def embed_files(self, paths: list[str], batch_size: int = 32): ...


def get_backbone(name: str) -> EmbeddingBackbone:
    """The loaded backbone called ``name`` (loaded once per process, then shared).

    Raises:
        LabelerError: the backbone cannot be loaded here (the message says why).
    """
    return shared_backbone(name, data_root() / "backbones")


def project_backbone_name(project: Project) -> str:
    """The backbone a project embeds with (its setting, else LABELER_BACKBONE)."""
    return (project.settings or {}).get("backbone") or current_app.config["BACKBONE"]


def space_of(backbone: EmbeddingBackbone) -> EmbeddingSpace:
    spec = backbone.spec
    return EmbeddingSpace(spec.name, spec.version, spec.input_size, spec.dim)  # type: ignore[attr-defined]


def vector_store(project: Project, backbone: EmbeddingBackbone) -> VectorStore:
    """The project's vector store for the given backbone's embedding space."""
    return VectorStore(data_root(), project.id, space_of(backbone), app_cache())


def images_missing_vectors(project: Project, store: VectorStore) -> list[tuple[int, str, str]]:
    """(id, sha256, format) of the project's images with no vector in ``store``."""
    rows = db.session.execute(
        select(Image.id, Image.sha256, Image.format)
        .where(Image.project_id == project.id).order_by(Image.id)
    ).all()
    have = np.unique(store.image_ids())
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    missing = ~np.isin(ids, have)
    return [tuple(rows[i]) for i in np.flatnonzero(missing)]  # type: ignore[misc]


def prepare_embedding(project: Project) -> tuple[EmbeddingBackbone, VectorStore]:
    """The project's backbone and vector store, with the store's space recorded on it."""
    backbone = get_backbone(project_backbone_name(project))
    store = vector_store(project, backbone)
    _record_space(project, store.space)
    return backbone, store


def embed_images(backbone: EmbeddingBackbone, store: VectorStore,
                 images: list[tuple[int, str, str]],
                 on_batch: Callable[[int], None] | None = None,
                 batch_size: int = 32) -> list[tuple[int, str]]:
    """Embed ``images`` ((id, sha256, format) rows) and append their vectors to ``store``.

    Args:
        on_batch: called after each durable batch with how many images are done so far.

    Returns:
        (image id, reason) of each image that could not be read.
    """
    blobs = BlobStore(data_root())
    paths = [str(blobs.image_path(sha, fmt)) for _, sha, fmt in images]
    done, failures = 0, []
    for batch in backbone.embed_files(paths, batch_size=batch_size):
        ids = [images[p][0] for p in batch.positions]
        if ids:
            # The store's lock per batch, not per job: chunks of one project embedded by
            # several workers at once then interleave whole batches instead of queueing.
            with store.writer() as writer:
                writer.append(ids, batch.vectors)
        failures.extend((images[p][0], reason) for p, reason in batch.failed)
        done += len(batch.positions) + len(batch.failed)
        if on_batch is not None:
            on_batch(done)
    return failures


def embed_project(progress: Callable[..., None], project_id: int, batch_size: int = 32) -> str:
    """Job: embed every image of the project that has no vector yet.

    Returns:
        A one-sentence summary for the Job row.
    """
    project = db.session.get(Project, project_id)
    if project is None:
        raise LabelerError(f"Project {project_id} no longer exists.")
    backbone, store = prepare_embedding(project)
    missing = images_missing_vectors(project, store)
    space = store.space
    if not missing:
        return f"All {len(store.image_ids())} images already embedded ({space.key})."
    progress(0.0, f"Embedding {len(missing)} images with {space.backbone}", force=True)

    def report(done: int) -> None:
        progress(done / len(missing), f"Embedded {done} of {len(missing)} images")

    failures = embed_images(backbone, store, missing, report, batch_size)
    return embedded_summary(space, len(missing) - len(failures), failures, project_id)


def embedded_summary(space: EmbeddingSpace, embedded: int, failures: list[tuple[int, str]],
                     project_id: int) -> str:
    """The embed job's summary sentence: how many were embedded, which could not be read."""
    summary = f"Embedded {embedded} images with {space.backbone} (version {space.version})."
    if failures:
        shown = "; ".join(f"image {i}: {reason}" for i, reason in failures[:3])
        summary += f" {len(failures)} could not be read ({shown})."
        log.warning("embedding: %d unreadable images in project %s", len(failures), project_id)
    return summary


def current_space(project: Project) -> EmbeddingSpace | None:
    """The embedding space of the project's stored vectors (None before the first embed).

    Recorded by the embed job, so readers (training, counts) need no backbone loaded.
    """
    recorded = (project.settings or {}).get("embedding_space")
    return EmbeddingSpace(**recorded) if recorded else None


def current_vectors(project: Project) -> VectorStore | None:
    """The project's vector store in its current space, or None before the first embed."""
    space = current_space(project)
    if space is None:
        return None
    return VectorStore(data_root(), project.id, space, app_cache())


def set_project_backbone(project: Project, name: str) -> None:
    """Switch the project's backbone; its images are embedded anew in the new space.

    A fine-tuned backbone still waiting for its embeddings is dropped: the user's choice
    wins over finishing that switch later.
    """
    settings = dict(project.settings or {})
    settings["backbone"] = name
    settings.pop("embedding_space", None)
    settings.pop("pending_backbone", None)
    project.settings = settings  # reassign: JSON columns do not track in-place changes
    db.session.commit()


def _record_space(project: Project, space: EmbeddingSpace) -> None:
    if (project.settings or {}).get("embedding_space") != asdict(space):
        project.settings = {**(project.settings or {}), "embedding_space": asdict(space)}
        db.session.commit()


def embedding_counts(project: Project) -> tuple[int, int]:
    """(images with a vector in the project's current space, images in the project)."""
    total = count_images(project)
    store = current_vectors(project)
    embedded = len(np.unique(store.image_ids())) if store is not None else 0
    return embedded, total


def pool_vectors(project: Project,
                 known_ids: np.ndarray) -> tuple[VectorStore, np.ndarray, np.ndarray]:
    """The vectors a round trains and predicts on: (store, image ids, embeddings).

    One row per image of ``known_ids`` (the project's images still in the database), its
    latest in the current embedding space, in vector-row order. When every image was
    embedded once, the embeddings are the memory map itself (no copy of a 2.4 GiB matrix).

    Raises:
        LabelerError: the project has no embeddings yet.
    """
    store = current_vectors(project)
    if store is None or len(store) == 0:
        raise LabelerError("No embeddings yet: run `labeler embed` (or wait for the "
                           "background embedding) before retraining.")
    ids = store.image_ids()
    _, first_reversed = np.unique(ids[::-1], return_index=True)
    rows = np.sort(len(ids) - 1 - first_reversed)
    rows = rows[np.isin(ids[rows], known_ids)]
    matrix = store.matrix()
    embeddings = matrix if len(rows) == len(matrix) else np.asarray(matrix[rows])
    return store, ids[rows], embeddings
