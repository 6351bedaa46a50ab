"""The demo shows its images without giving their classes away."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter

import pytest
from sqlalchemy import select

from labeler.demo import demo_truth, load_demo_images, prepare_demo
from labeler.extensions import db
from labeler.models import Image, Project
from tests.conftest import PASSWORD, login
from tests.demo_names import assert_neutral


@pytest.fixture
def demo(app):
    """The demo project as `labeler demo` prepares it (3,000 images, no labels)."""
    prepare_demo("demo", "demo", PASSWORD)
    return db.session.scalar(select(Project).where(Project.name == "demo"))


def test_names_alt_texts_and_export_file_names_hold_no_class_name(app, client, demo):
    names = db.session.scalars(select(Image.original_name)
                               .where(Image.project_id == demo.id)).all()
    assert len(names) == 3000 and "fashion-mnist/02825.png" in names
    assert_neutral(names)

    assert login(client, "demo").status_code == 302
    # The labelling page sets each image's alt text to its original_name.
    items = client.get(f"/api/v1/projects/{demo.id}/next?n=10").json["items"]
    assert len(items) == 10
    assert_neutral([item["original_name"] for item in items])
    # The project page's thumbnails (server-rendered alt and title).
    page = client.get(f"/projects/{demo.id}").text
    alts = re.findall(r'alt="([^"]*)"', page)
    assert len(alts) >= 20
    assert_neutral(alts)
    # The export of every image with its prediction: file_name is the original name.
    response = client.get(f"/api/v1/projects/{demo.id}/export?format=csv&include_predictions=1")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 3000
    assert_neutral([row["file_name"] for row in rows])

    # The truth stays in the package, by the names the images carry.
    truth = demo_truth()
    assert set(truth) == set(names)
    assert Counter(truth.values()) == dict.fromkeys(load_demo_images()[2], 300)
    _, labels, classes = load_demo_images()
    assert truth["fashion-mnist/02825.png"] == classes[labels[2825]]


def test_a_demo_imported_with_class_folders_is_renamed(app, demo):
    truth = demo_truth()
    images = db.session.scalars(select(Image).where(Image.project_id == demo.id)
                                .order_by(Image.id).limit(50)).all()
    for image in images:  # as earlier versions named them
        index = int(image.original_name.removeprefix("fashion-mnist/").removesuffix(".png"))
        folder = truth[image.original_name].replace("/", "-")
        image.original_name = f"fashion-mnist/{folder}/{index:04d}.png"
    db.session.commit()
    before = {image.id: image.sha256 for image in images}

    summary = prepare_demo("demo", "demo", PASSWORD)

    assert "Renamed 50 images" in summary and "3000 Fashion-MNIST images" in summary
    names = db.session.scalars(select(Image.original_name)
                               .where(Image.project_id == demo.id)).all()
    assert len(names) == 3000
    assert_neutral(names)
    for image in images:  # the same rows, renamed to the name their truth is kept under
        db.session.refresh(image)
        assert image.sha256 == before[image.id] and image.original_name in truth
    assert "Renamed" not in prepare_demo("demo", "demo", PASSWORD)
