"""The multi-label demo: mosaics whose tags are the classes they show, named neutrally."""

from __future__ import annotations

from collections import Counter

import numpy as np
from sqlalchemy import select

from labeler.demo import load_demo_images
from labeler.demo_tags import (
    demo_tag_truth,
    mosaic_layout,
    mosaic_pixels,
    prepare_tags_demo,
)
from labeler.extensions import db
from labeler.models import Image, Project
from tests.demo_names import assert_neutral


def test_mosaics_show_exactly_the_classes_they_are_tagged_with():
    images, labels, names = load_demo_images()
    layout = mosaic_layout(labels, 200)
    assert layout.shape == (200, 4)
    assert np.array_equal(layout, mosaic_layout(labels, 200))  # same seed, same mosaics
    truth = demo_tag_truth(200)
    sizes = Counter(len(tags) for tags in truth.values())
    assert set(sizes) == {1, 2, 3} and sizes[2] > sizes[1] and sizes[2] > sizes[3]
    for index, items in enumerate(layout):
        assert truth[f"fashion-mosaics/{index:05d}.png"] == {names[c] for c in labels[items]}
        pixels = mosaic_pixels(images, items)
        assert pixels.shape == (56, 56) and pixels.dtype == np.uint8
        # Reading order: the bottom-right quarter is the fourth item.
        assert np.array_equal(pixels[28:, 28:], images[items[3]])


def test_the_tags_demo_is_a_multi_label_project_of_unlabelled_mosaics(app):
    summary = prepare_tags_demo("demo-tags", n=40)
    project = db.session.scalar(select(Project).where(Project.name == "demo-tags"))
    assert project.multi_label and len(project.classes) == 10
    assert "40 mosaics" in summary and "multi-label" in summary
    rows = db.session.execute(select(Image.original_name, Image.width, Image.label_class_id,
                                     Image.tagged_at)
                              .where(Image.project_id == project.id)).all()
    assert len(rows) == 40 and all(row.width == 56 for row in rows)
    assert all(row.label_class_id is None and row.tagged_at is None for row in rows)
    assert_neutral([row.original_name for row in rows])
    # Preparing again (a second `labeler demo`) imports nothing twice.
    prepare_tags_demo("demo-tags", n=40)
    assert db.session.query(Image).filter_by(project_id=project.id).count() == 40
