"""Grid mode in a real Chromium: deselect two tiles by keyboard, confirm, labels stored."""

from __future__ import annotations

import pytest

from labeler.extensions import db
from labeler.models import Image
from labeler.users import create_user
from tests.builders import everyone_joins
from tests.e2e.conftest import log_in, screenshot
from tests.e2e.fashion import fashion_project

pytestmark = pytest.mark.e2e


def tile_ids(page) -> list[int]:
    return [int(i) for i in page.eval_on_selector_all(
        ".grid-tile", "tiles => tiles.map(t => t.dataset.imageId)")]


def test_deselect_two_by_keyboard_and_confirm_the_rest(page, live_server, lead):
    fashion = fashion_project(per_class=20, labelled_per_class=4, annotator=lead)
    kim = create_user("kim", "password-123", "annotator")
    everyone_joins()
    log_in(page, live_server, "kim", "password-123")
    page.goto(f"{live_server}/projects/{fashion.id}/grid")
    page.wait_for_selector(".grid-tile")
    page.wait_for_function("[...document.querySelectorAll('.grid-tile img')]"
                           ".every(img => img.complete)")
    label = page.text_content("#grid-class")
    shown = tile_ids(page)
    assert 4 <= len(shown) <= 16
    assert page.locator(".grid-tile[aria-pressed=true]").count() == len(shown)

    # A click toggles too (and a second click undoes it).
    page.locator(".grid-tile").nth(2).click()
    assert page.get_attribute(".grid-tile >> nth=2", "aria-pressed") == "false"
    page.locator(".grid-tile").nth(2).click()
    assert page.get_attribute(".grid-tile >> nth=2", "aria-pressed") == "true"

    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")  # back to the first tile
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")  # deselect the second tile
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")  # and the one below it
    rejected = [shown[1], shown[1 + 4]]
    pressed = page.eval_on_selector_all(
        ".grid-tile", "tiles => tiles.map(t => t.getAttribute('aria-pressed'))")
    assert [i for i, p in zip(shown, pressed, strict=True) if p == "false"] == rejected
    assert page.text_content("#count-deselected") == "2 deselected"
    assert page.text_content("#count-selected") == f"{len(shown) - 2} selected"
    screenshot(page, "grid")

    page.keyboard.press("Enter")
    page.wait_for_function(f"document.getElementById('count-done').textContent === "
                           f"'{len(shown) - 2} labelled in grids'")
    db.session.expire_all()
    for image_id in shown:
        image = db.session.get(Image, image_id)
        if image_id in rejected:
            assert image.label_class_id is None and image.leased_to_id is None
        else:
            assert image.label_class.name == label
            assert image.label_class_id is not None and image.leased_to_id is None
    # The next grid came without the answered images.
    assert not set(tile_ids(page)) & set(shown)
    assert kim.id is not None
