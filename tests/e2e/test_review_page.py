"""A reviewer accepts and corrects labels by keyboard in a real Chromium."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from labeler.extensions import db
from labeler.membership import set_member
from labeler.models import Annotation
from labeler.projects import class_by_name
from labeler.users import create_user
from tests.builders import images, label
from tests.e2e.conftest import log_in, screenshot

pytestmark = pytest.mark.e2e


def test_reviewer_accepts_with_enter_and_corrects_with_a_class_key(page, live_server, project,
                                                                  annotator):
    for image in images(project)[:2]:
        label(project, image, annotator, "red")
    rita = create_user("rita", "password-123", "annotator")
    set_member(project, rita, "reviewer")
    log_in(page, live_server, "rita", "password-123")
    page.goto(f"{live_server}/projects/{project.id}")
    page.click("text=Review")
    page.wait_for_selector("#review-image:not([hidden])")
    assert "red, by arno" in page.inner_text("#review-label")
    screenshot(page, "review")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('review-count').textContent === "
                           "'1 reviewed'")
    page.keyboard.press(class_by_name(project, "blue").key)
    page.wait_for_function("document.getElementById('review-count').textContent === "
                           "'2 reviewed'")
    page.wait_for_selector("#review-empty:not([hidden])")
    db.session.expire_all()
    reviews = db.session.scalars(select(Annotation).where(Annotation.source == "review")
                                 .order_by(Annotation.id)).all()
    assert [(r.label_class.name, r.annotator.username) for r in reviews] == [
        ("red", "rita"), ("blue", "rita")]
    assert all(r.reviews_id for r in reviews)
