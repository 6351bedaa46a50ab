"""Every page's scripts run under the real Content-Security-Policy (no bypass)."""

from __future__ import annotations

import pytest

from labeler.jobs import run_inline
from labeler.training import run_round
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.e2e


def test_pages_work_under_the_content_security_policy(browser, live_server, lead, project):
    run_inline("retrain", project.id, run_round)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    log_in(page, live_server, lead.username, "correct-horse-battery")
    checks = {
        f"/projects/{project.id}": "#dropzone",
        f"/projects/{project.id}/label": "#current-image:not([hidden])",
        # No trained round yet: the grid page's script writes why there is no grid.
        f"/projects/{project.id}/grid": "#grid-empty:not([hidden])",
        f"/projects/{project.id}/gallery": "img",
        f"/projects/{project.id}/dashboard": "svg",
        f"/projects/{project.id}/map": "canvas",
    }
    for url, selector in checks.items():
        page.goto(live_server + url)
        page.wait_for_selector(selector, timeout=15_000)  # drawn by our scripts
    context.close()
    assert problems == []
