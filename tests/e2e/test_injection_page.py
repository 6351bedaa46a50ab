"""Hostile names in a real browser under the real CSP: nothing runs, the text shows.

The same payloads as tests/test_access_control.py (project, class, file, user and job
names); the pages' own scripts render them, so this covers the JavaScript side of escaping
(textContent, never HTML) that a server-side test cannot see.
"""

from __future__ import annotations

import pytest

from labeler.jobs import run_inline
from labeler.training import run_round
from tests.builders import PAYLOAD, USER_PAYLOAD, seed_hostile_names
from tests.conftest import PASSWORD
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.e2e


def _visit_all(browser, base: str, username: str, pages: dict[str, str]) -> list[str]:
    """Visit ``pages`` (url -> selector our scripts draw) and return every problem seen."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # real CSP
    page = context.new_page()
    problems: list[str] = []

    def on_dialog(dialog) -> None:
        problems.append(f"dialog opened: {dialog.message!r}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    # A blocked inline script would mean markup was injected and only the CSP saved us.
    page.on("console", lambda msg: problems.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    log_in(page, base, username, PASSWORD)
    for url, selector in pages.items():
        page.goto(base + url)
        page.wait_for_selector(selector, timeout=15_000)
        page.wait_for_load_state("networkidle")
        if page.evaluate("() => window.__pwned !== undefined"):
            problems.append(f"window.__pwned set on {url}")
        injected = page.evaluate(
            "() => document.querySelectorAll('img[src=\"x\"], svg[onload], main script:not([src])')"
            ".length")
        if injected:
            problems.append(f"{injected} injected element(s) on {url}")
    # The payloads did reach the pages, as visible text (what textContent gives).
    shown_as_text = {"/label": ("#class-buttons", PAYLOAD),
                     "/dashboard": ("#annotators", USER_PAYLOAD),
                     "/dashboard#jobs": ("#jobs", f"could not read {PAYLOAD}")}
    for suffix, (selector, text) in shown_as_text.items():
        url = next((u for u in pages if u.endswith(suffix.split("#")[0])), None)
        if url is None:
            continue
        page.goto(base + url)
        page.wait_for_selector(f"{selector} >> text={text}", timeout=15_000)
    context.close()
    return problems


def test_hostile_names_never_run_in_the_browser(browser, live_server, lead, project):
    ids = seed_hostile_names(project, lead)
    run_inline("retrain", project.id, run_round)  # predictions and metrics name the classes
    p = project.id
    common = {
        f"/projects/{p}": "h1",
        f"/projects/{p}/label": "#current-image:not([hidden])",
        f"/projects/{p}/gallery": "img",
        f"/projects/{p}/images/{ids['image_id']}": "img",
        f"/projects/{p}/map": "canvas",
        "/": "h1",
    }
    lead_pages = {**common, f"/projects/{p}/dashboard": "svg", "/users": "table"}
    assert _visit_all(browser, live_server, lead.username, lead_pages) == []
    assert _visit_all(browser, live_server, USER_PAYLOAD, common) == []
