"""A lead opens the dashboard in a real Chromium, retrains and changes the strategy."""

from __future__ import annotations

import pytest

from labeler.extensions import db
from labeler.queue import lease_next
from labeler.training import project_strategy
from labeler.users import create_user
from tests.builders import label, trained
from tests.conftest import PASSWORD
from tests.e2e.conftest import log_in, screenshot
from tests.e2e.fashion import fashion_project

pytestmark = pytest.mark.e2e


def test_lead_sees_charts_retrains_and_changes_strategy(page, live_server, project):
    create_user("lena", "password-123", "lead")
    kim = create_user("kim", "password-123", "annotator")
    trained(project, kim, n=9)
    for image in lease_next(project, kim, n=6):  # labels since: the next round learns more
        label(project, image, kim)
    log_in(page, live_server, "lena", "password-123")
    page.goto(f"{live_server}/projects/{project.id}/dashboard")
    page.wait_for_selector("#dashboard[data-loaded=true]")

    # The learning curve has its point, the confusion matrix is 3 × 3 with class names.
    assert page.locator("#curve svg circle.dot").count() == 1
    # Round accuracy ticks up to 100 %, evenly spaced (2, 5, 10 or 20 % apart).
    ticks = [int(t.rstrip(" %")) for t in page.locator("#curve svg text.tick")
             .all_text_contents() if t.endswith("%")]
    steps = {b - a for a, b in zip(ticks, ticks[1:], strict=False)}
    assert ticks[-1] == 100 and len(steps) == 1 and steps <= {2, 5, 10, 20}, ticks
    assert page.locator("#confusion-table tbody tr").count() == 3
    assert page.locator("#confusion-table tbody tr:first-child td").count() == 3
    headers = page.locator("#confusion-table thead th.col-head").all_text_contents()
    assert sorted(headers) == ["blue", "green", "red"]
    assert page.locator("#class-chart svg rect").count() == 6  # labelled + auto-tagged
    assert "kim" in page.text_content("#annotators")

    page.click("#retrain")
    page.wait_for_function("document.getElementById('retrain-status').dataset.status === "
                           "'succeeded'", timeout=30_000)
    assert "succeeded" in page.text_content("#retrain-text")
    # The charts refresh: the new round is the second point of the curve.
    page.wait_for_function("document.querySelectorAll('#curve svg circle.dot').length === 2",
                           timeout=10_000)
    page.wait_for_function("!document.querySelector('#jobs .status-running, "
                           "#jobs .status-queued')", timeout=10_000)

    page.select_option("#strategy", "margin")
    page.fill("#retrain-every", "0")
    page.click("#settings-form button[type=submit]")
    page.wait_for_selector("#settings-error:not([hidden])")
    assert "at least 1" in page.text_content("#settings-error")
    page.fill("#retrain-every", "10")
    page.click("#settings-form button[type=submit]")
    page.wait_for_function("document.getElementById('settings-state').textContent"
                           ".startsWith('Saved')")
    assert page.is_hidden("#settings-error")
    db.session.refresh(project)
    assert project_strategy(project) == "margin"

    page.mouse.move(0, 0)
    screenshot(page, "dashboard", full_page=True)  # taller than one screen: all of it


def test_new_project_shows_what_to_do_next(page, live_server):
    from labeler.projects import create_project

    create_user("lena", "password-123", "lead")
    fresh = create_project("empty", ["cat", "dog"])
    log_in(page, live_server, "lena", "password-123")
    page.goto(f"{live_server}/projects/{fresh.id}/dashboard")
    page.wait_for_selector("#dashboard[data-loaded=true]")
    assert "No trained round yet." in page.text_content("#curve")
    assert "Nobody has labelled yet." in page.text_content("#annotators")
    assert "No confusion matrix yet." in page.text_content("#confusion")
    assert "No jobs yet." in page.text_content("#jobs")
    assert page.text_content("#kpi-images") == "0"


# The geometry checks below read the page as a lead sees it: a box that is "visible" to
# Playwright may still be clipped by a scrolling parent, so they compare bounding boxes.
CLIPPED_COLUMNS = """() => {
  const wrap = document.getElementById('confusion');
  const box = wrap.getBoundingClientRect();
  return Array.from(document.querySelectorAll('#confusion-table thead th.col-head'))
    .filter((th) => th.getBoundingClientRect().right > box.right + 0.5)
    .map((th) => th.textContent);
}"""


def test_confusion_matrix_of_ten_classes_fits_a_laptop_screen(browser, live_server, lead):
    fashion = fashion_project(per_class=10, labelled_per_class=5, annotator=lead)
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    log_in(page, live_server, lead.username, PASSWORD)
    page.goto(f"{live_server}/projects/{fashion.id}/dashboard")
    page.wait_for_selector("#dashboard[data-loaded=true]")

    headers = page.locator("#confusion-table thead th.col-head").all_text_contents()
    assert len(headers) == 10 and "Ankle boot" in headers
    assert page.evaluate(CLIPPED_COLUMNS) == []  # every column shows, none scrolled away
    assert page.is_hidden("#confusion-hint")
    context.close()


def test_confusion_matrix_scrolls_visibly_on_a_narrow_window(browser, live_server, lead):
    fashion = fashion_project(per_class=10, labelled_per_class=5, annotator=lead)
    context = browser.new_context(viewport={"width": 640, "height": 900})
    page = context.new_page()
    log_in(page, live_server, lead.username, PASSWORD)
    page.goto(f"{live_server}/projects/{fashion.id}/dashboard")
    page.wait_for_selector("#dashboard[data-loaded=true]")

    # The page itself never scrolls sideways; only the matrix does.
    assert page.evaluate("document.documentElement.scrollWidth") <= 640
    # Too wide for the window: the lead is told it scrolls, and by how much.
    assert page.evaluate(CLIPPED_COLUMNS) != []
    page.wait_for_selector("#confusion-hint:not([hidden])", timeout=5_000)
    assert "10" in page.text_content("#confusion-hint")
    # Scrolled to the last column, the row names stay readable at the left edge.
    page.eval_on_selector("#confusion", "(wrap) => { wrap.scrollLeft = wrap.scrollWidth; }")
    assert page.evaluate(CLIPPED_COLUMNS) == []
    wrap = page.locator("#confusion").bounding_box()
    for name in ("T-shirt/top", "Ankle boot"):
        row_head = page.locator("#confusion-table tbody th", has_text=name).bounding_box()
        assert row_head["x"] >= wrap["x"] - 0.5, f"{name} scrolled out of view"
    context.close()


def test_no_empty_job_banner_when_no_job_runs(page, live_server, project):
    create_user("lena", "password-123", "lead")
    log_in(page, live_server, "lena", "password-123")
    page.goto(f"{live_server}/projects/{project.id}/dashboard")
    page.wait_for_selector("#dashboard[data-loaded=true]")
    assert page.locator("#retrain-status").bounding_box() is None  # not drawn at all
    assert page.locator("#retrain-progress").bounding_box() is None


def test_lead_sees_calibration_and_whether_more_labels_pay(page, live_server, project):
    create_user("lena", "password-123", "lead")
    kim = create_user("kim", "password-123", "annotator")
    page.goto(f"{live_server}/projects/{project.id}/dashboard")  # nothing trained yet
    log_in(page, live_server, "lena", "password-123")
    page.goto(f"{live_server}/projects/{project.id}/dashboard")
    page.wait_for_selector("#dashboard[data-loaded=true]")
    assert "No calibration yet" in page.text_content("#calibration")
    assert "No estimate yet" in page.text_content("#outlook")

    trained(project, kim, n=9)
    page.reload()
    page.wait_for_selector("#dashboard[data-loaded=true]")
    # The reliability curve: the diagonal, and one dot per filled bin before and after.
    assert page.locator("#calibration svg line.diagonal").count() == 1
    assert page.locator("#calibration svg circle.dot-calibrated").count() >= 1
    assert page.locator("#calibration svg circle.dot-raw").count() >= 1
    assert "expected calibration error" in page.text_content("#calibration-sub")
    assert page.text_content("#outlook-accuracy").endswith("%")
    assert " – " in page.text_content("#outlook-interval")
    assert "3 rounds" in page.text_content("#outlook-note")
    page.locator("#calibration-panel").scroll_into_view_if_needed()
    screenshot(page, "dashboard-calibration", full_page=True)
