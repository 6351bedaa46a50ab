"""A small project of the demo's real Fashion-MNIST images, for the browser tests.

Ten classes with the demo's real names and its real 28-pixel greyscale images: what a
first-time user sees. The fake backbone embeds them (fast); the images, their sizes and the
class names are the real ones, which is what the pages' layout depends on.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select

from labeler.annotations import record_label
from labeler.demo import load_demo_images
from labeler.embeddings import register_backbone
from labeler.extensions import db
from labeler.importer import import_sources
from labeler.jobs import run_inline
from labeler.models import Image, JobStatus, Project, User
from labeler.project_vectors import embed_project
from labeler.projects import create_project
from labeler.sources import Source
from labeler.training import run_round
from tests.fakes import FAKE_BACKBONE, FakeBackbone


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(pixels, mode="L").save(buffer, "PNG")
    return buffer.getvalue()


def fashion_project(per_class: int = 12, labelled_per_class: int = 0,
                    annotator: User | None = None, name: str = "fashion") -> Project:
    """Project ``name``: ``per_class`` demo images of each of the 10 classes, embedded.

    The first ``labelled_per_class`` images of each class are labelled with their true
    class (by ``annotator``) and a round is trained on them; with none, only the
    cold-start round runs, as on a fresh demo.
    """
    images, labels, names = load_demo_images()
    register_backbone(FAKE_BACKBONE, lambda cache_dir: FakeBackbone())
    project = create_project(name, names, backbone=FAKE_BACKBONE)
    chosen = np.concatenate([np.flatnonzero(labels == k)[:per_class] for k in range(len(names))])
    truth = {f"fm-{i:04d}.png": names[labels[i]] for i in chosen}
    sources = [Source(f"fm-{i:04d}.png", lambda p=images[i]: _png(p), None, images[i].size)
               for i in sorted(chosen)]
    import_sources(project, sources, total=len(sources))
    assert run_inline("embed", project.id, embed_project).status == JobStatus.SUCCEEDED
    run_inline("retrain", project.id, run_round)  # the cold-start round a server runs
    if labelled_per_class:
        classes = {c.name: c for c in project.classes}
        done: dict[str, int] = {}
        for image in db.session.scalars(select(Image).where(Image.project_id == project.id)
                                        .order_by(Image.id)):
            true_class = truth[image.original_name]
            if done.get(true_class, 0) < labelled_per_class:
                record_label(image, classes[true_class], annotator)
                done[true_class] = done.get(true_class, 0) + 1
        db.session.commit()
        job = run_inline("retrain", project.id, run_round)
        assert job.status == JobStatus.SUCCEEDED, job.message
    return project
