"""Every main page loads in a real Chromium without a console error or a failed request."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import log_in
from tests.e2e.fashion import fashion_project

pytestmark = pytest.mark.e2e


def test_main_pages_have_no_console_errors_or_failed_requests(browser, live_server, lead):
    project = fashion_project(per_class=6, labelled_per_class=3, annotator=lead)
    # The real Content-Security-Policy: a violation is a console error too.
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(
        f"console {msg.type} on {page.url}: {msg.text} ({msg.location.get('url')})")
        if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    # A request the browser itself abandons as the next page opens (the favicon, often) is
    # not a failure of ours; anything else that fails is.
    page.on("requestfailed", lambda request: problems.append(
        f"request failed: {request.url} ({request.failure})")
        if "ERR_ABORTED" not in (request.failure or "") else None)
    page.on("response", lambda response: problems.append(
        f"HTTP {response.status}: {response.url}") if response.status >= 400 else None)

    page.goto(f"{live_server}/auth/login")
    page.wait_for_load_state("networkidle")
    log_in(page, live_server, lead.username, PASSWORD)
    p = project.id
    pages = {"/": "h1", f"/projects/{p}": "h1",
             f"/projects/{p}/label": "#current-image:not([hidden])",
             f"/projects/{p}/gallery": ".g-tile img",
             f"/projects/{p}/dashboard": "#dashboard[data-loaded=true]",
             f"/projects/{p}/map": "#map-canvas[data-drawn]"}
    for url, ready in pages.items():
        page.goto(live_server + url)
        page.wait_for_selector(ready, timeout=15_000)
        page.wait_for_load_state("networkidle")
    context.close()
    assert problems == []

