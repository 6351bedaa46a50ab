"""An annotator filters the gallery, selects with mouse and keys, and bulk-confirms."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from labeler.annotations import record_label
from labeler.extensions import db
from labeler.models import Annotation, Image
from labeler.projects import class_by_name
from labeler.training import set_training_options
from labeler.users import create_user
from tests.builders import everyone_joins
from tests.conftest import PASSWORD
from tests.e2e.conftest import log_in, screenshot
from tests.e2e.fashion import fashion_project

pytestmark = pytest.mark.e2e


def give_predictions(project):
    """Predictions as a trained round would leave them: mostly right, a few flagged."""
    images = db.session.scalars(select(Image).where(Image.project_id == project.id)
                                .order_by(Image.id)).all()
    names = ["red", "green", "blue"]
    # The lead picked colours that match the class names (the default palette does not).
    for name, colour in zip(names, ["#d92d20", "#12a150", "#1d5bd6"], strict=True):
        class_by_name(project, name).colour = colour
    for i, image in enumerate(images):
        colour = image.original_name.rsplit("/", 1)[-1].split("_")[0]
        # Every 7th image is predicted wrong, with low confidence, as real models do.
        wrong = i % 7 == 3
        predicted = names[(names.index(colour) + 1) % 3] if wrong else colour
        image.predicted_class_id = class_by_name(project, predicted).id
        image.confidence = 0.52 + (i * 37 % 45) / 100 if not wrong else 0.41
        image.prediction_round = 2
        image.duplicate_group = 1 if i in (0, 9) else None
    # A few labels already given, one of which the model doubts.
    for image in images[:2]:
        colour = image.original_name.rsplit("/", 1)[-1].split("_")[0]
        record_label(image, class_by_name(project, colour))
    images[1].suspected_error = True
    db.session.commit()
    return images


def test_filter_select_and_bulk_confirm(page, live_server, project):
    from labeler.jobs import run_inline
    from labeler.training import run_round

    # A first round exists (as on a live server) and no further one is due: a background
    # round would replace the predictions below while the test looks at them.
    set_training_options(project, retrain_every=1000)
    run_inline("retrain", project.id, run_round)
    give_predictions(project)
    create_user("kim", "password-123", "annotator")
    everyone_joins()
    log_in(page, live_server, "kim", "password-123")
    page.goto(f"{live_server}/projects/{project.id}/gallery")
    page.select_option("select[name=predicted]", "red")
    page.select_option("select[name=label]", "unlabelled")
    page.fill("input[name=min_confidence]", "0.5")
    page.click(".g-filters button[type=submit]")
    page.wait_for_url(re.compile(r".*predicted=red.*min_confidence=0\.5.*"))
    tiles = page.locator(".g-tile")
    count = tiles.count()
    assert count >= 4
    assert all(t.startswith("red?") for t in page.locator(".g-badge-pred").all_text_contents())

    tiles.nth(0).click()  # mouse: one, then shift-click a range
    tiles.nth(2).click(modifiers=["Shift"])
    page.keyboard.press("ArrowRight")  # keyboard: move to the 4th tile and select it
    page.keyboard.press("Space")
    assert page.text_content("#g-selected") == "4 images selected"
    ids = [int(tiles.nth(i).get_attribute("data-image-id")) for i in range(4)]

    page.click("#g-confirm")
    page.wait_for_function("document.getElementById('g-status').textContent"
                           ".startsWith('Confirmed the prediction of 4 images')")
    for i in range(4):
        assert tiles.nth(i).locator(".g-badge-label").text_content() == "red"
        assert tiles.nth(i).get_attribute("aria-selected") == "false"
    if count > 4:
        assert tiles.nth(4).locator(".g-badge-pred").count() == 1  # not selected: unchanged
    db.session.expire_all()
    rows = db.session.scalars(select(Annotation).where(Annotation.source == "gallery")).all()
    assert sorted(a.image_id for a in rows) == sorted(ids)
    red = class_by_name(project, "red")
    assert db.session.scalar(select(func.count()).select_from(Image).where(
        Image.id.in_(ids), Image.label_class_id == red.id)) == 4

    # The image's own page shows who confirmed it, from where.
    page.click(f".g-tile[data-image-id='{ids[0]}'] .g-open", force=True)
    page.wait_for_url(re.compile(rf".*/images/{ids[0]}$"))
    history = page.text_content(".d-history")
    assert "kim" in history and "gallery" in history and "Current" in history

    # The whole project, a few tiles selected, for the documentation's screenshot.
    page.goto(f"{live_server}/projects/{project.id}/gallery?sort=confidence")
    page.wait_for_function("Array.from(document.querySelectorAll('.g-thumb img'))"
                           ".slice(0, 12).every((img) => img.complete)")
    all_tiles = page.locator(".g-tile")
    all_tiles.nth(1).click()
    all_tiles.nth(2).click(modifiers=["Control"])
    all_tiles.nth(4).click(modifiers=["Control"])
    page.mouse.move(5, 5)
    page.wait_for_timeout(300)  # let the selection ring's transition finish
    screenshot(page, "gallery")


# Every caption element, and whether it is cut off: by its own ellipsis (scrollWidth) or
# by the caption box it sits in (bounding boxes).
CUT_CAPTIONS = """() => {
  const cut = [];
  for (const tile of document.querySelectorAll('.g-tile')) {
    const box = tile.querySelector('.g-caption').getBoundingClientRect();
    for (const part of tile.querySelectorAll('.g-caption > *, .g-caption > * > *')) {
      const r = part.getBoundingClientRect();
      if (part.scrollWidth > part.clientWidth + 1 || r.right > box.right + 0.5
          || r.bottom > box.bottom + 0.5 || r.left < box.left - 0.5) {
        cut.push(`${tile.dataset.imageId}: ${part.textContent}`);
      }
    }
  }
  return cut;
}"""


def worst_case_captions(project):
    """Long class names everywhere: labels the model disputes, flags on every tile."""
    images = db.session.scalars(select(Image).where(Image.project_id == project.id)).all()
    tshirt, boot = class_by_name(project, "T-shirt/top"), class_by_name(project, "Ankle boot")
    for i, image in enumerate(images):
        image.duplicate_group = 12
        if image.label_class_id is not None:
            image.predicted_class_id = tshirt.id if image.label_class_id != tshirt.id else boot.id
            image.confidence = 0.53
            image.suspected_error = True
        elif i % 2:
            image.predicted_class_id, image.confidence = boot.id, 0.91
    db.session.commit()


@pytest.mark.parametrize("width", [1366, 700])
def test_captions_are_whole_and_small_images_crisp(browser, live_server, lead, width):
    fashion = fashion_project(per_class=11, labelled_per_class=3, annotator=lead)
    set_training_options(fashion, retrain_every=1000)  # no round replaces the data below
    worst_case_captions(fashion)
    context = browser.new_context(viewport={"width": width, "height": 768}, bypass_csp=True)
    page = context.new_page()
    log_in(page, live_server, lead.username, PASSWORD)
    page.goto(f"{live_server}/projects/{fashion.id}/gallery")
    page.click("#g-load-more")  # 110 images: the last 10 tiles are drawn by the script
    page.wait_for_function("document.querySelectorAll('.g-tile').length === 110")

    assert page.evaluate(CUT_CAPTIONS) == []
    flags = page.locator(".g-flag-dup")
    assert flags.count() == 110
    for i in (0, 109):  # server-rendered and script-rendered tiles alike
        assert flags.nth(i).get_attribute("title").startswith("Near-duplicate group 12")
        assert len(flags.nth(i).text_content()) < len("dup 12")
    # 28-pixel images upscaled into 150-pixel tiles: crisp pixels, not a smoothed blur.
    rendering = page.eval_on_selector_all(
        ".g-thumb img", "(imgs) => imgs.map((img) => getComputedStyle(img).imageRendering)")
    assert rendering == ["pixelated"] * 110
    context.close()
