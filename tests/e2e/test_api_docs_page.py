"""/api/docs renders every operation of the OpenAPI document in a real Chromium, under
the real Content-Security-Policy, with nothing loaded from elsewhere and no console error."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from labeler.extensions import db
from labeler.models import Annotation
from tests.builders import images, label
from tests.conftest import PASSWORD
from tests.e2e.conftest import CHROMIUM, log_in, screenshot

pytestmark = pytest.mark.e2e

# Swagger UI treats localhost and 127.0.0.1 specially (no online-validator badge): browse
# under a real-looking name, as users do, so a request to another site would show.
HOST = "labeler.test"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture
def named_host_browser(browser):
    """A Chromium that resolves ``HOST`` to the loopback address."""
    named = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
              "--disable-background-networking", "--disable-component-update",
              f"--host-resolver-rules=MAP {HOST} 127.0.0.1"])
    yield named
    named.close()


def documented_operations(client) -> set[tuple[str, str]]:
    document = client.get("/api/v1/openapi.json").get_json()
    return {(method.upper(), path) for path, item in document["paths"].items()
            for method in item if method in METHODS}


def rendered_operations(page) -> set[tuple[str, str]]:
    blocks = page.locator(".opblock-summary")
    return {(block.locator(".opblock-summary-method").inner_text().strip().upper(),
             block.locator(".opblock-summary-path").get_attribute("data-path"))
            for block in blocks.all()}


def try_it_out(page, method: str, path: str, parameters: dict[str, str]) -> str:
    """Run one operation from its block on the page, as a person would; its HTTP status."""
    block = page.locator(
        f".opblock-{method.lower()}:has(.opblock-summary-path[data-path='{path}'])")
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    for name, value in parameters.items():
        block.locator(f"tr[data-param-name='{name}'] input").fill(value)
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table .response .response-col_status")
    status.wait_for(timeout=15_000)
    return status.inner_text().strip()


def test_api_reference_renders_every_operation_under_the_csp(named_host_browser, live_server,
                                                             app, lead, project):
    live_server = live_server.replace("127.0.0.1", HOST)
    expected = documented_operations(app.test_client())
    annotation = label(project, images(project)[0], lead)
    assert len(expected) > 10  # the API's document, not an empty one
    # The real policy (no bypass_csp): a violation is a console error.
    context = named_host_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("requestfailed", lambda request: problems.append(
        f"request failed: {request.url} ({request.failure})"))
    page.on("response", lambda response: problems.append(
        f"HTTP {response.status}: {response.url}") if response.status >= 400 else None)
    origin = urlsplit(live_server).netloc
    page.on("request", lambda request: problems.append(f"left the site: {request.url}")
            if urlsplit(request.url).netloc not in (origin, "") else None)

    # Public: the document it renders is public too.
    page.goto(f"{live_server}/api/docs")
    page.wait_for_selector("#api-reference[data-loaded=true] .opblock", timeout=30_000)
    assert rendered_operations(page) == expected
    assert page.locator("nav.topnav").count() == 0  # no account menu for visitors

    # Signed in, the header links to it and "Try it out" runs with the session.
    log_in(page, live_server, lead.username, PASSWORD)
    page.click("nav.topnav >> text=API")
    page.wait_for_selector("#api-reference[data-loaded=true] .opblock", timeout=30_000)
    assert page.url == f"{live_server}/api/docs"
    assert rendered_operations(page) == expected
    screenshot(page, "api_docs")
    # A state-changing call: the session alone is refused without the page's CSRF token.
    undo = next(path for method, path in expected
                if method == "DELETE" and path.startswith("/annotations/{"))
    parameter = undo.removeprefix("/annotations/{").removesuffix("}")
    status = try_it_out(page, "DELETE", undo, {parameter: str(annotation.id)})
    assert status == "200"
    db.session.expire_all()
    assert db.session.get(Annotation, annotation.id).undone_at is not None
    context.close()
    assert problems == []
