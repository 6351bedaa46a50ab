"""An annotator labels with the keyboard only, in a real Chromium against a real server."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from labeler.extensions import db
from labeler.models import Annotation, ModelRound
from labeler.training import set_training_options
from labeler.users import create_user
from tests.e2e.conftest import screenshot
from tests.test_api import project  # noqa: F401 - the colour project fixture

pytestmark = pytest.mark.e2e


def log_in(page, base, username, password):
    page.goto(f"{base}/auth/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))


def test_label_ten_with_keys_undo_one_and_see_a_round(page, live_server, project):  # noqa: F811
    from labeler.jobs import run_inline
    from labeler.training import run_round

    create_user("kim", "password-123", "annotator")
    set_training_options(project, retrain_every=5)
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
