"""A lead manages a project's members in a real Chromium under the real Content-Security-
Policy; what a removed annotator then sees is checked in a second browser context."""

from __future__ import annotations

import pytest

from labeler.extensions import db
from labeler.membership import project_role
from labeler.users import create_user
from tests.e2e.conftest import log_in, screenshot

pytestmark = pytest.mark.e2e


def test_lead_adds_changes_and_removes_a_member(app, browser, live_server, project):
    create_user("lena", "password-123", "lead")
    kim = create_user("kim", "password-123", "annotator")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text)
            if "Content Security Policy" in msg.text else None)

    log_in(page, live_server, "lena", "password-123")
    page.goto(f"{live_server}/projects/{project.id}")
    page.click("text=Members")
    page.fill("input[name=username]", "kim")
    page.select_option("select[name=role]", "reviewer")
    page.click("text=Add member")
    page.wait_for_selector("tr[data-member=kim]")
    assert "'kim' is now reviewer" in page.inner_text("main")
    db.session.expire_all()
    assert project_role(kim, project.id) == "reviewer"

    page.select_option("tr[data-member=kim] select", "lead")
    page.click("tr[data-member=kim] >> text=Save")
    page.wait_for_selector("text='kim' is now lead")
    db.session.expire_all()
    assert project_role(kim, project.id) == "lead"
    screenshot(page, "members")

    page.fill("input[name=username]", "nobody")
    page.click("text=Add member")
    # The form posts and the page reloads: wait for the answer, not the page before it.
    page.wait_for_selector("text=no user named 'nobody'")
    assert "no user named 'nobody'" in page.inner_text("main")

    page.click("tr[data-member=kim] >> text=Remove")
    page.wait_for_selector("text='kim' is no longer a member")
    assert page.locator("tr[data-member=kim]").count() == 0
    db.session.expire_all()
    assert project_role(kim, project.id) is None

    # Kim, no longer a member, lists no project and gets a 404 from its page.
    other = browser.new_context().new_page()
    log_in(other, live_server, "kim", "password-123")
    assert project.name not in other.inner_text("main")
    response = other.goto(f"{live_server}/projects/{project.id}")
    assert response.status == 404
    context.close()
    assert problems == []
