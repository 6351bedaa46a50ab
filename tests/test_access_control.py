"""Access control end to end: CSRF on every session-authenticated state change, secrets
stored only as hashes, images served only by integer id with a fixed image content type,
and hostile names (projects, classes, files, users, jobs) escaped on every page."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import inspect, text
from werkzeug.datastructures import FileStorage

from labeler import create_app
from labeler.database import upgrade_database
from labeler.extensions import db
from labeler.users import create_api_token, create_user
from tests.builders import FILE_PAYLOAD, PAYLOAD, USER_PAYLOAD, image_bytes, seed_hostile_names
from tests.conftest import PASSWORD, login
from tests.dbutil import database_config

RAW_MARKERS = ("<script>alert", "<img src=x", "<svg/onload", "'><script")


def _csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def csrf_app(tmp_path: Path) -> Iterator[Flask]:
    """An app with Flask-WTF's CSRF protection on, as in production."""
    home = tmp_path / "csrf"
    app = create_app({"HOME": home, "TESTING": True, "WTF_CSRF_ENABLED": True,
                      "LOGIN_RATE_LIMIT": "", **database_config(home)})
    upgrade_database(app)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def _session_client(app: Flask, username: str) -> tuple[FlaskClient, str]:
    """A client logged in through the real form (with its CSRF token), and that token."""
    client = app.test_client()
    token = _csrf_from(client.get("/auth/login").text)
    response = client.post("/auth/login", data={"username": username, "password": PASSWORD,
                                                "csrf_token": token})
    assert response.status_code == 302, response.text
    return client, _csrf_from(client.get("/").text)


def _state_changing_rules(app: Flask) -> Iterator[tuple[str, str, str]]:
    values = {"project_id": 1, "class_id": 1, "user_id": 1, "annotation_id": 1}
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"}):
                url = app.url_for(rule.endpoint, **{n: values[n] for n in rule.arguments})
                yield rule.endpoint, method, url


def test_login_form_itself_needs_the_csrf_token(csrf_app):
    create_user("lena", PASSWORD, "lead")
    response = csrf_app.test_client().post("/auth/login",
                                           data={"username": "lena", "password": PASSWORD})
    assert response.status_code == 400 and "Form expired" in response.text


def test_every_html_state_change_refuses_a_session_request_without_csrf(csrf_app):
    from labeler.models import LabelClass, User
    from labeler.projects import create_project

    create_user("lena", PASSWORD, "lead")
    create_project("p", ["a"])
    client, token = _session_client(csrf_app, "lena")
    checked = set()
    for endpoint, method, url in _state_changing_rules(csrf_app):
        if url.startswith("/api/") or endpoint == "auth.login":
            continue
        response = client.open(url, method=method, data={"name": "added", "role": "annotator",
                                                         "username": "mallory",
                                                         "password": "long-enough-1"})
        assert response.status_code == 400, (endpoint, method, response.status_code)
        assert "Form expired" in response.text, endpoint
        checked.add(endpoint)
    assert {"auth.logout", "projects.new", "projects.add_class_view", "users.index",
            "users.update", "projects.update_class_view", "projects.upload"} <= checked
    # Nothing happened: no class, no user, still logged in (logout was refused too).
    assert db.session.query(LabelClass).filter_by(name="added").count() == 0
    assert db.session.query(User).filter_by(username="mallory").count() == 0
    assert client.get("/users").status_code == 200
    # A wrong token is no better than none.
    response = client.post("/projects/1/classes", data={"name": "added", "csrf_token": "x"})
    assert response.status_code == 400
    # Control: the same request with the session's token goes through.
    response = client.post("/projects/1/classes", data={"name": "added", "csrf_token": token})
    assert response.status_code == 302
    assert db.session.query(LabelClass).filter_by(name="added").count() == 1


def test_bearer_token_does_not_lift_csrf_on_html_forms(csrf_app):
    from labeler.models import LabelClass
    from labeler.projects import create_project

    lead = create_user("lena", PASSWORD, "lead")
    create_project("p", ["a"])
    bearer = {"Authorization": f"Bearer {create_api_token(lead)}"}
    response = csrf_app.test_client().post("/projects/1/classes", data={"name": "added"},
                                           headers=bearer)
    assert response.status_code == 400
    assert db.session.query(LabelClass).filter_by(name="added").count() == 0


def test_every_api_state_change_needs_the_csrf_header_with_a_session(csrf_app):
    from labeler.projects import create_project

    create_user("lena", PASSWORD, "lead")
    create_project("p", ["a"])
    client, _token = _session_client(csrf_app, "lena")
    checked = 0
    for endpoint, method, url in _state_changing_rules(csrf_app):
        if not url.startswith("/api/"):
            continue
        response = client.open(url, method=method, json={"name": "q", "classes": ["a"]})
        assert response.status_code == 400, (endpoint, method, response.status_code)
        assert response.json["error"] == "CSRF token missing or invalid", endpoint
        checked += 1
    assert checked >= 7
    assert [p["name"] for p in client.get("/api/v1/projects").json["projects"]] == ["p"]


def test_api_csrf_follows_how_the_caller_authenticated_not_the_header(csrf_app):
    lead = create_user("lena", PASSWORD, "lead")
    client, token = _session_client(csrf_app, "lena")
    body = {"name": "q", "classes": ["a"]}
    # A session cookie plus a made-up Bearer header must not skip the session's CSRF check.
    forged = client.post("/api/v1/projects", json=body,
                         headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 400, forged.json
    with_header = client.post("/api/v1/projects", json=body, headers={"X-CSRFToken": token})
    assert with_header.status_code == 201, with_header.json
    # A real token, no cookie: no CSRF token needed (nothing for a browser to forge).
    bearer = {"Authorization": f"Bearer {create_api_token(lead)}"}
    by_token = csrf_app.test_client().post("/api/v1/projects", headers=bearer,
                                           json={"name": "r", "classes": ["a"]})
    assert by_token.status_code == 201, by_token.json
    # A session and a real token together: the token is proof enough.
    both = client.post("/api/v1/projects", json={"name": "s", "classes": ["a"]}, headers=bearer)
    assert both.status_code == 201, both.json


# --- secrets stored only as hashes ----------------------------------------------------


def _database_path(app: Flask) -> Path:
    return Path(db.engine.url.database)


def test_passwords_and_tokens_are_stored_only_as_hashes(app):
    secret_password = "clear-password-7Q2x"
    user = create_user("hashme", secret_password, "lead")
    token = create_api_token(user, name="laptop")
    assert user.password_hash.startswith("scrypt:")  # a slow, salted KDF
    db.session.remove()

    # Every row of every table, read through the engine so it works on any backend.
    texts = []
    with db.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                texts.extend(value for value in row if isinstance(value, str | bytes))
    assert any("scrypt:" in str(t) for t in texts)  # the scan does see the user row
    secret_bytes = [secret_password.encode(), token.encode(), token.removeprefix("lbl_").encode()]
    for value in texts:
        raw = value if isinstance(value, bytes) else value.encode()
        assert not any(secret in raw for secret in secret_bytes), value
    if db.engine.dialect.name != "sqlite":
        return  # a server database's files are not ours to read
    # The raw files, write-ahead log included, hold neither secret in any form.
    path = _database_path(app)
    files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
    assert path in files
    for file in files:
        data = file.read_bytes()
        assert not any(secret in data for secret in secret_bytes), file


def test_two_users_with_one_password_get_different_salted_hashes(app):
    first = create_user("one", "same-password-1", "annotator")
    second = create_user("two", "same-password-1", "annotator")
    assert first.password_hash != second.password_hash


# --- images only by id -------------------------------------------------------------------


EXPECTED_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif",
                  "WEBP": "image/webp", "BMP": "image/bmp", "TIFF": "image/tiff"}


@pytest.fixture
def formats_project(app, lead):
    from labeler.importer import import_uploads
    from labeler.projects import create_project

    formats = create_project("formats", ["a"])
    uploads = [FileStorage(io.BytesIO(image_bytes(fmt)), filename=f"x.{fmt.lower()}")
               for fmt in EXPECTED_TYPES]
    report = import_uploads(formats, uploads, annotator=lead)
    assert report.imported == len(EXPECTED_TYPES), report.summary()
    return formats


def test_image_routes_take_only_integer_ids(app):
    from werkzeug.routing import IntegerConverter

    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("images.")]
    assert {r.endpoint for r in rules} == {"images.thumbnail", "images.display",
                                           "images.original"}
    for rule in rules:
        assert rule.arguments == {"image_id"}, rule
        assert isinstance(rule._converters["image_id"], IntegerConverter), rule


@pytest.mark.parametrize("url", [
    "/images/..%2f..%2fetc%2fpasswd", "/images/1/../../secret.txt", "/images/..%2fsecret.txt",
    "/images/abc/original", "/images/1.5/original", "/images/-1/original",
    "/images/%2e%2e/secret.txt/original", "/images/1/original/../../../secret.txt",
    "/images/1%2f..%2f..%2fsecret.txt/original", "/static/..%2fsecret.txt",
    "/static/../secret.txt", "/images/999999/original", "/images/999999/display",
])
def test_paths_from_the_client_never_reach_the_file_system(app, lead_client, formats_project,
                                                          url):
    secret = app.config["HOME"] / "secret.txt"
    secret.write_text("TOP-SECRET")
    response = lead_client.get(url)
    assert response.status_code == 404, (url, response.status_code)
    assert b"TOP-SECRET" not in response.data and b"root:" not in response.data


def test_served_images_have_their_stored_type_and_are_never_html(lead_client, formats_project):
    from labeler.models import Image

    images = db.session.query(Image).filter_by(project_id=formats_project.id).all()
    assert {image.format for image in images} == set(EXPECTED_TYPES)
    for image in images:
        original = lead_client.get(f"/images/{image.id}/original")
        assert original.status_code == 200
        assert original.mimetype == EXPECTED_TYPES[image.format], image.format
        display = lead_client.get(f"/images/{image.id}/display")
        expected_display = "image/jpeg" if image.format == "TIFF" else EXPECTED_TYPES[
            image.format]
        assert display.mimetype == expected_display, image.format
        thumbnail = lead_client.get(f"/images/{image.id}/thumbnail")
        assert thumbnail.mimetype == "image/jpeg"
        for response in (original, display, thumbnail):
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.mimetype.startswith("image/")
            assert "Content-Security-Policy" not in response.headers  # not a page


def test_a_row_with_an_unknown_format_is_not_served_as_html(lead_client, formats_project):
    from labeler.models import Image

    image = db.session.query(Image).filter_by(format="PNG").one()
    image.format = "HTML"  # e.g. a tampered or future row: the name must not pick the type
    db.session.commit()
    response = lead_client.get(f"/images/{image.id}/original")
    assert response.status_code == 404 or response.mimetype != "text/html"
    response = lead_client.get(f"/images/{image.id}/display")
    assert response.status_code == 404 or not response.mimetype.startswith("text/")


def test_svg_and_html_uploads_are_rejected(lead_client, formats_project):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>'
    html = b"<html><script>alert(1)</script></html>"
    response = lead_client.post(
        f"/projects/{formats_project.id}/upload", headers={"Accept": "application/json"},
        data={"files": [(io.BytesIO(svg), "a.svg"), (io.BytesIO(html), "b.png")]},
        content_type="multipart/form-data")
    assert response.status_code == 200, response.text
    assert response.json["imported"] == 0 and len(response.json["rejected"]) == 2


# --- hostile names escaped everywhere -----------------------------------------------------


def assert_escaped(text: str, where: str) -> None:
    for marker in RAW_MARKERS:
        assert marker not in text, f"raw {marker!r} on {where}"


def _html_pages(project_id: int, image_id: int) -> list[str]:
    return ["/", f"/projects/{project_id}", f"/projects/{project_id}/label",
            f"/projects/{project_id}/gallery", f"/projects/{project_id}/images/{image_id}",
            f"/projects/{project_id}/map", f"/projects/{project_id}/dashboard", "/users",
            "/projects/new", "/projects/987654", "/no-such-page"]


def test_hostile_names_are_escaped_on_every_page(app, client, lead, project):
    ids = seed_hostile_names(project, lead)
    pages = _html_pages(project.id, ids["image_id"])
    for username, allowed in (("lena", pages), (USER_PAYLOAD, pages)):
        client.post("/auth/logout")
        assert login(client, username).status_code == 302
        for url in allowed:
            response = client.get(url)
            assert response.mimetype == "text/html", url
            assert response.status_code in {200, 403, 404}, (url, response.status_code)
            assert_escaped(response.text, f"{url} as {username}")
        # The payloads did reach the pages, escaped: the test would see a raw one.
        page = client.get(f"/projects/{project.id}/label").text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
        assert "\\u003cscript\\u003e" in page  # the classes' JSON in data-classes
    client.post("/auth/logout")
    login(client, "lena")
    users_page = client.get("/users").text
    assert "&lt;script&gt;alert(&#34;u&#34;)&lt;/script&gt;&lt;svg/onload=alert(2)&gt;" in (
        users_page)
    gallery = client.get(f"/projects/{project.id}/images/{ids['image_id']}").text
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in gallery


def test_flash_messages_escape_the_names_they_repeat(app, lead_client, project):
    response = lead_client.post(f"/projects/{project.id}/classes", data={"name": PAYLOAD},
                                follow_redirects=True)
    assert "added with key" in response.text
    assert_escaped(response.text, "flash after adding a class")
    response = lead_client.post(
        f"/projects/{project.id}/upload",
        data={"files": [(io.BytesIO(b"not an image"), FILE_PAYLOAD)]},
        content_type="multipart/form-data", follow_redirects=True)
    assert "Rejected" in response.text
    assert_escaped(response.text, "flash after a rejected upload")
    response = lead_client.post("/projects/new", data={"name": PAYLOAD, "classes": PAYLOAD},
                                follow_redirects=True)
    assert "created" in response.text
    assert_escaped(response.text, "flash after creating a project")
