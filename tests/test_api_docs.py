"""``/api/docs``: public like the OpenAPI document, under the CSP, linked for signed-in users.

The browser test (tests/e2e/test_api_docs_page.py) checks that it renders every operation.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_api_reference_is_public_and_loads_only_our_files(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    for url in ("/static/vendor/swagger-ui/swagger-ui-bundle.js",
                "/static/vendor/swagger-ui/swagger-ui.css", "/static/api_docs.js",
                'data-openapi-url="/api/v1/openapi.json"'):
        assert url in response.text
    assert client.get("/api/v1/openapi.json").status_code == 200  # what the page fetches
    assert "data-csrf-token" not in response.text  # visitors have no session to use


def test_signed_in_users_find_it_in_the_header(lead_client):
    page = lead_client.get("/").text
    assert 'href="/api/docs">API</a>' in page
    assert "data-csrf-token=" in lead_client.get("/api/docs").text


def test_vendored_swagger_ui_keeps_its_licence_and_a_true_version_note():
    vendor = REPO / "static" / "vendor" / "swagger-ui"
    assert "Apache License" in (vendor / "LICENSE").read_text()
    bundle = (vendor / "swagger-ui-bundle.js").read_text()
    version = re.search(r'PACKAGE_VERSION:"([0-9.]+)"', bundle)
    assert version, "swagger-ui-bundle.js no longer says its version"
    assert f"**{version[1]}**" in (vendor / "README.md").read_text()
