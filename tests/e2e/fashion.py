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


# --- multi-label: 2×2 mosaics of demo items, tagged with the kinds of item they hold -----

#: Tag name -> the demo class whose items carry it.
MOSAIC_TAGS = {"top": "T-shirt/top", "trouser": "Trouser", "sneaker": "Sneaker", "bag": "Bag"}


def tag_mosaics(count: int, seed: int = 0) -> list[tuple[str, bytes, list[str]]]:
    """``count`` real 56-pixel mosaics: each quarter is a demo item of one of the tagged
    classes or left dark; returns (file name, PNG bytes, its true tags in MOSAIC_TAGS order).
    Every sixth mosaic is empty: an image none of the tags fits."""
    images, labels, names = load_demo_images()
    pools = {tag: np.flatnonzero(labels == names.index(cls)) for tag, cls in MOSAIC_TAGS.items()}
    rng = np.random.default_rng(seed)
    mosaics = []
    for n in range(count):
        # A faint noise floor: no two empty mosaics are the same file (the importer would
        # store them once).
        canvas = rng.integers(0, 10, size=(56, 56), dtype=np.uint8)
        present: set[str] = set()
        for quarter in range(0 if n % 6 == 5 else 4):  # every 6th mosaic stays empty
            tag = rng.choice([*MOSAIC_TAGS, None])
            if tag is None:
                continue
            item = images[rng.choice(pools[tag])]
            row, col = divmod(quarter, 2)
            canvas[row * 28:(row + 1) * 28, col * 28:(col + 1) * 28] = item
            present.add(str(tag))
        tags = [t for t in MOSAIC_TAGS if t in present]
        mosaics.append((f"mosaic-{n:03d}.png", _png(canvas), tags))
    return mosaics


def import_mosaics(project: Project, count: int) -> dict[str, list[str]]:
    """Import ``tag_mosaics(count)`` into ``project`` and embed them (fake backbone).

    Returns the true tags of each file name.
    """
    register_backbone(FAKE_BACKBONE, lambda cache_dir: FakeBackbone())
    mosaics = tag_mosaics(count)
    sources = [Source(name, lambda data=data: data, None, len(data)) for name, data, _ in mosaics]
    import_sources(project, sources, total=len(sources))
    assert run_inline("embed", project.id, embed_project).status == JobStatus.SUCCEEDED
    return {name: tags for name, _, tags in mosaics}
