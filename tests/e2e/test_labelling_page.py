"""An annotator labels with the keyboard only, in a real Chromium against a real server."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from labeler.extensions import db
from labeler.models import Annotation, ModelRound
from labeler.training import set_training_options
from labeler.users import create_user
from tests.builders import everyone_joins
from tests.conftest import PASSWORD
from tests.e2e.conftest import log_in, screenshot
from tests.e2e.fashion import fashion_project

pytestmark = pytest.mark.e2e


def test_label_ten_with_keys_undo_one_and_see_a_round(page, live_server, project):
    from labeler.jobs import run_inline
    from labeler.training import run_round

    create_user("kim", "password-123", "annotator")
    everyone_joins()
    set_training_options(project, retrain_every=5, min_round_interval_s=0)
    run_inline("retrain", project.id, run_round)  # the server's cold-start round after embedding
    log_in(page, live_server, "kim", "password-123")
    page.goto(f"{live_server}/projects/{project.id}/label")
    page.wait_for_selector("#current-image:not([hidden])")
    page.wait_for_function("document.getElementById('current-image').complete")

    shown = []
    for _ in range(10):
        image_id = page.get_attribute("#current-image", "data-image-id")
        shown.append(image_id)
        name = page.text_content("#stage-caption")
        key = {"red": "1", "green": "2", "blue": "3"}[name.split("_")[0]]
        page.keyboard.press(key)
        page.wait_for_function(
            f"document.getElementById('current-image').dataset.imageId !== '{image_id}'")
    assert len(set(shown)) == 10  # never the same image twice

    page.wait_for_function("document.getElementById('save-state').textContent === "
                           "'all labels saved'")
    page.keyboard.press("z")  # undo the last label
    page.wait_for_function(
        f"document.getElementById('current-image').dataset.imageId === '{shown[-1]}'")

    active = db.session.scalar(select(func.count()).select_from(Annotation)
                               .where(Annotation.undone_at.is_(None)))
    assert active == 9
    # Rounds were triggered every 5 labels and ran while labelling went on.
    page.wait_for_function(
        "document.getElementById('progress-accuracy').textContent.startsWith('round')",
        timeout=30_000)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(ModelRound)
                             .where(ModelRound.status == "succeeded")) >= 1
    # The images in hand got the new round's predictions without a reload.
    page.wait_for_function("document.getElementById('prediction').textContent"
                           ".includes('% sure')", timeout=30_000)
    # "Why this image" shows the nearest of the images labelled a moment ago.
    neighbours = page.locator("#neighbours > *")
    assert neighbours.count() >= 1, page.locator("#neighbours").inner_html()
    screenshot(page, "labelling")


def test_cold_start_reason_is_in_words_and_empty_sections_hide(page, live_server, lead):
    fashion = fashion_project(per_class=4)  # embedded, cold-start round only: a fresh demo
    log_in(page, live_server, lead.username, PASSWORD)
    page.goto(f"{live_server}/projects/{fashion.id}/label")
    page.wait_for_selector("#current-image:not([hidden])")
    page.wait_for_function("document.getElementById('progress-accuracy').textContent !== ''")

    reason = page.text_content("#reason")
    assert "A typical example of a group of similar images" in reason
    assert "score" not in reason.lower() and "round" not in reason.lower()
    assert page.text_content("#progress-accuracy") == "no trained round yet"
    detail = page.text_content("#reason-detail")
    assert "before any model was trained" in detail and "round" not in detail
    # Nobody has labelled anything: no "Nearest labelled images" heading over nothing.
    assert page.is_hidden("#neighbours-title") and page.is_hidden("#neighbours")


def test_trained_reason_names_the_classes_and_similarity_has_a_scale(page, live_server, lead):
    fashion = fashion_project(per_class=6, labelled_per_class=3, annotator=lead)
    page.set_viewport_size({"width": 1366, "height": 768})  # a common laptop screen
    log_in(page, live_server, lead.username, PASSWORD)
    page.goto(f"{live_server}/projects/{fashion.id}/label")
    page.wait_for_selector("#current-image:not([hidden])")

    top = [li.split(":")[0] for li in page.locator("#probabilities li").all_text_contents()]
    reason = page.text_content("#reason")
    match = re.fullmatch(r"The model is least sure between (.+) \(\d+\s%\) and (.+) \(\d+\s%\): "
                         r"the closest call among similar images\.", reason)
    assert match, reason
    assert [match[1], match[2]] == top[:2]
    assert "from round 2" in page.text_content("#reason-detail")
    assert page.is_visible("#neighbours-title")
    captions = page.locator("#neighbours li").all_text_contents()
    assert len(captions) == 3
    scale = re.compile(r"similarity (0\.\d\d|1\.00) of 1$")
    assert all(scale.search(c.strip()) for c in captions), captions
    # All of it shows at once: the side panel does not hide the last neighbour below a scroll.
    page.wait_for_function("Array.from(document.querySelectorAll('#neighbours img'))"
                           ".every((img) => img.complete)")
    assert page.eval_on_selector("aside.why", "(a) => a.scrollHeight - a.clientHeight") <= 1
    # The neighbours' 28-pixel thumbnails are drawn crisp, like the image itself.
    assert page.eval_on_selector_all(
        "#neighbours img", "(imgs) => imgs.map((i) => getComputedStyle(i).imageRendering)"
    ) == ["pixelated"] * 3
