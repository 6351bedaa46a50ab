"""A real server (waitress, in a thread) and a real headless Chromium, for end-to-end tests."""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# What the browser tests saw, for a person to look at after a run. An ignored folder: the
# tests never rewrite tracked files (the README's screenshots in docs/screenshots/ are
# refreshed on purpose, by `python -m tests.e2e.refresh_screenshots`).
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("LABELER_CHROMIUM") or shutil.which("chromium") or shutil.which(
    "chromium-browser")


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed; `bash .ci/run` installs it (apt: chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture
def live_server(app):
    """The test app served by waitress on a free loopback port, in a background thread."""
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()


@pytest.fixture
def page(browser):
    # bypass_csp: Playwright's wait_for_function evaluates strings, which our CSP forbids;
    # tests/e2e/test_csp.py checks the pages themselves under the real policy.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def screenshot(page, name: str, full_page: bool = False) -> None:
    """Save what ``page`` shows as test-artifacts/screenshots/<name>.png (never tracked)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def log_in(page, base, username, password):
    """Log in through the login page, as a person would."""
    page.goto(f"{base}/auth/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))
