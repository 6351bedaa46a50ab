"""Security headers on every response, and the login rate limit."""

from __future__ import annotations

from labeler import create_app
from labeler.database import upgrade_database
from labeler.users import create_user
from tests.dbutil import database_config


def test_pages_carry_a_content_security_policy_without_inline_scripts(lead_client):
    response = lead_client.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split(
        "script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_json_and_static_responses_are_nosniff(lead_client):
    for url in ("/static/app.css", "/api/v1/projects"):
        assert lead_client.get(url).headers["X-Content-Type-Options"] == "nosniff"


def test_no_template_has_inline_script_or_event_handler():
    import re
    from pathlib import Path

    templates = Path(__file__).resolve().parent.parent / "templates"
    for path in templates.rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path
        assert not re.search(r"\son[a-z]+\s*=", text), path


def test_login_attempts_are_rate_limited(tmp_path):
    app = create_app({"HOME": tmp_path, "TESTING": True, "WTF_CSRF_ENABLED": False,
                      **database_config(tmp_path)})
    upgrade_database(app)
    with app.app_context():
        create_user("target", "right-password")
    client = app.test_client()
    statuses = [client.post("/auth/login", data={"username": "target", "password": "guess"})
                .status_code for _ in range(12)]
    assert statuses[:10] == [200] * 10 and statuses[-1] == 429
    blocked = client.post("/auth/login", data={"username": "target", "password": "x"})
    assert "Too many login attempts" in blocked.text
