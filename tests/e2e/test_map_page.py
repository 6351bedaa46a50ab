"""The embedding map in a real Chromium: it draws, hover previews, the colouring toggles."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sqlalchemy import select

from labeler.annotations import record_label
from labeler.extensions import db
from labeler.models import Image
from labeler.users import create_user
from tests.builders import colour_image
from tests.e2e.conftest import log_in, screenshot

pytestmark = pytest.mark.e2e

COLOURS = {"red": ((214, 48, 49), "#d63031"), "green": ((39, 174, 96), "#27ae60"),
           "blue": ((41, 98, 255), "#2962ff"), "amber": ((240, 170, 20), "#f0aa14")}

FIND_POINT = """() => {
  // A fully drawn pixel of some point, in CSS pixels relative to the canvas.
  const canvas = document.getElementById('map-canvas');
  const ctx = canvas.getContext('2d');
  const {data, width, height} = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const dpr = canvas.width / canvas.getBoundingClientRect().width;
  for (let y = 0; y < height; y += 2) for (let x = 0; x < width; x += 2) {
    if (data[(y * width + x) * 4 + 3] > 150) return {x: x / dpr, y: y / dpr};
  }
  return null;
}"""


@pytest.fixture
def mapped_project(app, tmp_path):
    """Four colour classes, 40 images each, a quarter labelled, and a trained round."""
    from labeler.embeddings import register_backbone
    from labeler.importer import import_paths
    from labeler.jobs import run_inline
    from labeler.project_vectors import embed_project
    from labeler.projects import class_by_name, create_project
    from labeler.training import run_round
    from tests import imagegen
    from tests.fakes import FAKE_BACKBONE, FakeBackbone

    register_backbone(FAKE_BACKBONE, lambda cache_dir: FakeBackbone())
    project = create_project("paint-chips", list(COLOURS), backbone=FAKE_BACKBONE)
    for c in project.classes:
        c.colour = COLOURS[c.name][1]
    # Each image gets its own shade, so the clusters have some spread on the map.
    rng = np.random.default_rng(7)
    imagegen.write_files(tmp_path / "in", {
        f"{name}_{i}.png": colour_image(np.clip(np.add(rgb, rng.normal(0, 30, 3)), 0, 255),
                                        seed=i * 7 + k)
        for k, (name, (rgb, _)) in enumerate(COLOURS.items()) for i in range(40)})
    import_paths(project, [tmp_path / "in"])
    run_inline("embed", project.id, embed_project)
    images = db.session.scalars(select(Image).where(Image.project_id == project.id)).all()
    for image in images:
        name = image.original_name.rsplit("/", 1)[-1].split("_")[0]
        if int(image.original_name.rsplit("_", 1)[-1].split(".")[0]) < 10:
            record_label(image, class_by_name(project, name))
    db.session.commit()
    run_inline("retrain", project.id, run_round)
    return project


def test_map_draws_previews_on_hover_and_toggles_colouring(page, live_server, mapped_project):
    create_user("kim", "password-123", "annotator")
    log_in(page, live_server, "kim", "password-123")
    page.goto(f"{live_server}/projects/{mapped_project.id}/map")
    page.wait_for_selector("#map-canvas[data-drawn='160']")
    # PCA first, saying so, while the page's visit queues the t-SNE layout ...
    assert page.get_attribute("#map-canvas", "data-method") == "pca"
    assert "160 images · PCA" in page.text_content("#map-summary")
    assert page.text_content("#map-projection") == (
        "Projection: PCA, while the t-SNE layout is being computed. "
        "The map switches to it by itself when it is ready.")
    # ... then the page switches by itself once the job has laid the images out.
    page.wait_for_selector("#map-canvas[data-method='tsne']", timeout=60_000)
    assert "160 images · t-SNE" in page.text_content("#map-summary")
    assert page.text_content("#map-projection").startswith(
        "Projection: t-SNE. Images the model finds alike lie close together")
    assert page.get_attribute("#map-canvas", "data-drawn") == "160"

    point = page.evaluate(FIND_POINT)
    assert point is not None, "the canvas drew no point"
    box = page.locator("#map-canvas").bounding_box()
    page.mouse.move(box["x"] + point["x"], box["y"] + point["y"])
    page.wait_for_selector("#map-tooltip:not([hidden])")
    assert re.fullmatch(r"#\d+", page.text_content("#tooltip-id"))
    assert page.text_content("#tooltip-predicted") in COLOURS  # the round predicted them all
    page.wait_for_function("document.getElementById('tooltip-img').complete && "
                           "document.getElementById('tooltip-img').naturalWidth > 0")
    # A 64-pixel thumbnail in a 174-pixel preview: enlarged pixel by pixel, not blurred.
    assert page.eval_on_selector("#tooltip-img", "(i) => getComputedStyle(i).imageRendering"
                                 ) == "pixelated"
    legend = page.locator("#map-legend li")
    assert legend.count() == 5 and "Unlabelled" in legend.nth(4).text_content()
    assert legend.nth(4).locator(".map-legend-count").text_content() == "120"
    screenshot(page, "map")

    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.click("label:has(input[value=predicted])")
    page.wait_for_selector("#map-canvas[data-colour-by='predicted']")
    assert page.text_content("#legend-title") == "Predictions"
    assert page.locator("#map-legend li").nth(4).locator(
        ".map-legend-count").text_content() == "0"
    assert page.evaluate(FIND_POINT) is not None

    # Clicking a point opens that image's page.
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    page.wait_for_url(re.compile(rf".*/projects/{mapped_project.id}/images/\d+$"))


def test_breadcrumb_names_the_page(page, live_server, mapped_project):
    create_user("kim", "password-123", "annotator")
    log_in(page, live_server, "kim", "password-123")
    page.goto(f"{live_server}/projects/{mapped_project.id}/map")
    assert page.inner_text(".map-crumb").strip() == "paint-chips / Embedding map"
