"""Pages: login, project list and overview, images served by id only."""

from __future__ import annotations

import io

from PIL import Image as PILImage

from labeler.importer import import_paths
from labeler.projects import create_project
from tests import imagegen
from tests.conftest import login


def test_anonymous_users_are_sent_to_login(client):
    response = client.get("/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_login_page_explains_how_to_create_the_first_lead(client):
    page = client.get("/auth/login").text
    assert "labeler user create" in page and "--role lead" in page


def test_wrong_password_is_refused_with_a_message(client, lead):
    response = login(client, lead.username, "wrong-password")
    assert response.status_code == 200 and "Wrong username or password" in response.text


def test_login_then_logout(client, lead):
    assert login(client, lead.username).status_code == 302
    assert client.get("/").status_code == 200
    client.post("/auth/logout")
    assert client.get("/").status_code == 302


def test_login_never_redirects_off_site(client, lead):
    response = client.post("/auth/login?next=//evil.example/",
                           data={"username": lead.username, "password": "correct-horse-battery"})
    assert response.headers["Location"] == "/"


def test_inactive_user_cannot_log_in(client, lead):
    from labeler.extensions import db

    lead.active = False
    db.session.commit()
    assert login(client, lead.username).status_code == 200


def test_project_pages_show_counts_and_thumbnails(lead_client, app, tmp_path):
    project = create_project("coast <b>", ["sea"])
    imagegen.write_files(tmp_path, {"a.png": imagegen.encode(
        PILImage.fromarray(imagegen.gradient(seed=3)), "PNG")})
    report = import_paths(project, [tmp_path])

    listing = lead_client.get("/").text
    assert "coast &lt;b&gt;" in listing and "coast <b>" not in listing
    page = lead_client.get(f"/projects/{project.id}").text
    assert "1 images" in page and f"/images/{report.image_ids[0]}/thumbnail" in page

    thumb = lead_client.get(f"/images/{report.image_ids[0]}/thumbnail")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    original = lead_client.get(f"/images/{report.image_ids[0]}/original")
    assert original.mimetype == "image/png"
    assert original.data == (tmp_path / "a.png").read_bytes()


def test_unknown_ids_are_404_pages_not_errors(lead_client):
    for url in ("/projects/999", "/images/999/thumbnail", "/images/999/original"):
        response = lead_client.get(url)
        assert response.status_code == 404 and "Not Found" in response.text


def test_ids_beyond_the_database_range_are_404_pages_not_500(lead_client):
    # SQLite raises OverflowError past 64 bits and PostgreSQL past 2**31-1 (integer ids).
    for huge in (2**31, 2**63, 10**30):
        for url in (f"/projects/{huge}", f"/projects/{huge}/dashboard", f"/projects/{huge}/map",
                    f"/projects/{huge}/gallery", f"/images/{huge}/thumbnail",
                    f"/projects/1/images/{huge}"):
            response = lead_client.get(url)
            assert response.status_code == 404, (url, response.status_code)
        response = lead_client.post(f"/users/{huge}")
        assert response.status_code == 404, response.status_code


def test_images_need_login(client):
    assert client.get("/images/1/thumbnail").status_code == 302


def test_empty_state_tells_what_to_do(lead_client):
    assert "labeler project create" in lead_client.get("/").text


def test_csrf_is_required_on_forms(app, lead):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    response = login(client, lead.username)
    assert response.status_code == 400 and "CSRF" in response.text


def test_favicon_is_served_without_logging_in(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype == "image/vnd.microsoft.icon"
    assert response.data[:4] == b"\x00\x00\x01\x00"  # the ICO header
    with PILImage.open(io.BytesIO(response.data)) as icon:
        assert {(16, 16), (32, 32)} <= set(icon.info["sizes"])
    svg = client.get("/static/favicon.svg")
    assert svg.status_code == 200 and b"<svg" in svg.data
    assert 'rel="icon"' in client.get("/auth/login").text
