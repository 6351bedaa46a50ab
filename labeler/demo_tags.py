"""The multi-label demo: 2×2 mosaics of the shipped Fashion-MNIST images, tagged by content.

A tagging project needs images that show several things at once. Each mosaic puts four of
the demo's 28×28 items in a 56×56 image; its tags are the classes it shows (one to three
of the ten, about two on average), so "Sneaker" and "Bag" are independent yes/no questions
about every image, as in a real tagging task. The layout is drawn from a fixed seed, so the
same mosaics (and names) come back on every machine; as in the single-label demo, names are
positions (``fashion-mosaics/00042.png``), never tags, and the truth stays in the package's
arrays (``demo_tag_truth``) to check labels against.
"""

from __future__ import annotations

import numpy as np
from flask import current_app
from sqlalchemy import select

from .demo import load_demo_images, png_bytes
from .extensions import db
from .importer import ImportReport, import_sources
from .models import Project
from .projects import count_images, create_project
from .sources import Source

DEMO_MOSAICS = 1_000
MOSAIC_SEED = 17
#: How many distinct classes a mosaic shows, and how often.
_TAG_COUNTS, _TAG_COUNT_WEIGHTS = (1, 2, 3), (0.25, 0.5, 0.25)


def mosaic_layout(labels: np.ndarray, n: int = DEMO_MOSAICS,
                  seed: int = MOSAIC_SEED) -> np.ndarray:
    """Which four demo items each mosaic shows: an n×4 array of indexes into ``labels``.

    Every class a mosaic's tags name appears in at least one of its cells, and no other.
    """
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(labels == c) for c in range(int(labels.max()) + 1)]
    layout = np.empty((n, 4), dtype=np.int64)
    for row in range(n):
        k = rng.choice(_TAG_COUNTS, p=_TAG_COUNT_WEIGHTS)
        classes = rng.choice(len(by_class), size=k, replace=False)
        cells = np.concatenate([classes, rng.choice(classes, size=4 - k)])
        rng.shuffle(cells)
        layout[row] = [rng.choice(by_class[c]) for c in cells]
    return layout


def mosaic_pixels(images: np.ndarray, items: np.ndarray) -> np.ndarray:
    """The 2×2 mosaic (56×56 uint8) of four 28×28 ``images[items]``, in reading order."""
    top = np.hstack([images[items[0]], images[items[1]]])
    bottom = np.hstack([images[items[2]], images[items[3]]])
    return np.vstack([top, bottom])


def mosaic_file_name(index: int) -> str:
    """The name of mosaic ``index``: its position, never its tags."""
    return f"fashion-mosaics/{index:05d}.png"


def demo_tag_truth(n: int = DEMO_MOSAICS) -> dict[str, set[str]]:
    """The true tag set of each demo mosaic, by its file name."""
    _, labels, names = load_demo_images()
    layout = mosaic_layout(labels, n)
    return {mosaic_file_name(index): {names[c] for c in labels[items]}
            for index, items in enumerate(layout)}


def prepare_tags_demo(project_name: str, n: int = DEMO_MOSAICS) -> str:
    """Create (once) the multi-label demo project with its mosaics, unlabelled.

    Returns:
        A summary line for the terminal.
    """
    images, labels, names = load_demo_images()
    project = db.session.scalar(select(Project).where(Project.name == project_name))
    if project is None:
        project = create_project(project_name, names, multi_label=True)
    count = count_images(project)
    if count == 0:
        report = _import_mosaics(project, images, mosaic_layout(labels, n))
        count = report.imported
    return (f"Demo project {project.name!r}: {count} mosaics of Fashion-MNIST items, each "
            f"tagged with any of 10 classes (multi-label; data in "
            f"{current_app.config['HOME']}).")


def _import_mosaics(project: Project, images: np.ndarray, layout: np.ndarray) -> ImportReport:
    sources = [Source(mosaic_file_name(index),
                      lambda items=items: png_bytes(mosaic_pixels(images, items)), None,
                      4 * int(images[0].size))
               for index, items in enumerate(layout)]
    return import_sources(project, sources, total=len(sources))
