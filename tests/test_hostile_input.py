"""Hostile and odd input through every entry point: CLI, upload page and JSON API.

Each entry point imports the whole corpus of ``tests/hostile_corpus.py`` once (a module
fixture with its own app); the parametrised tests then check one case each, so a failure
names the case. Every file must be imported and normalised, or refused with its reason;
the server never answers 5xx.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from markupsafe import escape
from PIL import Image as PILImage
from sqlalchemy import select

from labeler import create_app
from labeler.database import upgrade_database
from labeler.embeddings import register_backbone
from labeler.extensions import db
from labeler.jobs import runner
from labeler.models import Image, Project
from labeler.projects import create_project
from labeler.storage import BlobStore
from labeler.users import create_api_token, create_user
from tests.conftest import PASSWORD, login
from tests.dbutil import database_config
from tests.fakes import FAKE_BACKBONE, FakeBackbone
from tests.hostile_corpus import CASES, HTML_NAME, LONG_NAME, UNICODE_NAME, Case, build_corpus

COLOUR_TOLERANCE = 40  # JPEG thumbnails shift flat colours by a few levels


@dataclass(frozen=True)
class Stored:
    """An imported image as stored: its row's size and format, and its thumbnail."""

    id: int
    width: int
    height: int
    format: str
    thumbnail: bytes


@dataclass(frozen=True)
class Outcome:
    """What one entry point did with the whole corpus."""

    rejected: dict[str, str]  # reported name (relative to the corpus) -> reason
    stored: dict[str, Stored]  # original name (relative to the corpus) -> stored image
    pages: dict[str, str]  # HTML or text the entry point answered, by what it is
    statuses: dict[str, int]


def _new_app(home: Path, **config: object) -> Flask:
    app = create_app({"HOME": home, "TESTING": True, "WTF_CSRF_ENABLED": False,
                      "IMPORT_WORKERS": 2, "LOGIN_RATE_LIMIT": "", **database_config(home),
                      **config})
    upgrade_database(app)
    return app


def _fake_project(name: str, classes: list[str]) -> Project:
    """A project embedded by the fast fake backbone (uploads start a background embed)."""
    register_backbone(FAKE_BACKBONE, lambda cache_dir: FakeBackbone())
    return create_project(name, classes, backbone=FAKE_BACKBONE)


def _stored_images(app: Flask, prefix: str = "") -> dict[str, Stored]:
    store = BlobStore(Path(app.config["HOME"]))
    return {image.original_name.removeprefix(prefix): Stored(
                image.id, image.width, image.height, image.format,
                store.thumbnail_path(image.sha256).read_bytes())
            for image in db.session.scalars(select(Image))}


def _run_entry_point(tmp_path_factory: pytest.TempPathFactory,
                     drive: Callable[[Flask, Path, int], Outcome]) -> Iterator[Outcome]:
    """A fresh app and project, the corpus written, and ``drive`` importing it."""
    root = tmp_path_factory.mktemp("hostile")
    corpus = root / "corpus"
    build_corpus(corpus)
    app = _new_app(root / "data")
    with app.app_context():
        create_user("lena", PASSWORD, "lead")
        yield drive(app, corpus, _fake_project("hostile", ["sea"]).id)
        assert runner(app).wait_idle(60)  # the background embed of the uploads
        db.session.remove()
        db.engine.dispose()


def _multipart(corpus: Path) -> dict[str, list[tuple[io.BytesIO, str]]]:
    files = sorted({case.file for case in CASES})
    return {"files": [(io.BytesIO((corpus / name).read_bytes()), name) for name in files]}


@pytest.fixture(scope="module")
def via_cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    def drive(app: Flask, corpus: Path, project_id: int) -> Outcome:
        result = app.test_cli_runner().invoke(args=["import", "hostile", str(corpus)])
        prefix = f"{corpus.name}/"  # named below the imported folder, not where it sits
        rejected = dict(line.removeprefix(f"rejected  {prefix}").split(": ", 1)
                        for line in result.output.splitlines() if line.startswith("rejected"))
        return Outcome(rejected, _stored_images(app, prefix), {"output": result.output},
                       {"exit_code": result.exit_code})

    yield from _run_entry_point(tmp_path_factory, drive)


@pytest.fixture(scope="module")
def via_upload_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    def drive(app: Flask, corpus: Path, project_id: int) -> Outcome:
        client = app.test_client()
        login(client, "lena")
        response = client.post(f"/projects/{project_id}/upload", data=_multipart(corpus),
                               content_type="multipart/form-data", follow_redirects=True)
        flashes = [html.unescape(m) for m in re.findall(
            r'<p class="flash flash-error" role="status">(.*?)</p>', response.text, re.S)]
        rejected = dict(m.removeprefix("Rejected ").split(": ", 1) for m in flashes
                        if m.startswith("Rejected "))
        stored = _stored_images(app)
        detail = client.get(f"/projects/{project_id}/images/{stored[HTML_NAME].id}")
        return Outcome(rejected, stored, {"project": response.text, "detail": detail.text},
                       {"upload": response.status_code, "detail": detail.status_code})

    yield from _run_entry_point(tmp_path_factory, drive)


@pytest.fixture(scope="module")
def via_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    def drive(app: Flask, corpus: Path, project_id: int) -> Outcome:
        token = create_api_token(create_user("api-lead", PASSWORD, "lead"))
        response = app.test_client().post(
            f"/api/v1/projects/{project_id}/images", data=_multipart(corpus),
            headers={"Authorization": f"Bearer {token}"}, content_type="multipart/form-data")
        report = response.get_json()
        rejected = {r["name"]: r["reason"] for r in report["rejected"]}
        return Outcome(rejected, _stored_images(app), {"json": response.text},
                       {"upload": response.status_code, "imported": report["imported"]})

    yield from _run_entry_point(tmp_path_factory, drive)


def _near(actual: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - e) <= COLOUR_TOLERANCE for a, e in zip(actual, expected, strict=True))


def check_case(outcome: Outcome, case: Case) -> None:
    """The case was refused with its reason, or stored as its normalisation says."""
    if not case.accept:
        assert case.name not in outcome.stored
        assert case.name in outcome.rejected, sorted(outcome.rejected)
        assert case.reason in outcome.rejected[case.name]
        return
    assert case.name not in outcome.rejected, outcome.rejected.get(case.name)
    stored, expect = outcome.stored[case.name], case.expect
    assert expect is not None
    assert (stored.width, stored.height, stored.format) == (
        expect.width, expect.height, expect.format)
    thumb = PILImage.open(io.BytesIO(stored.thumbnail))
    assert (thumb.format, thumb.mode) == ("JPEG", "RGB")  # viewable in any browser
    assert (thumb.width > thumb.height) == (expect.width > expect.height)
    for pixel in expect.pixels:
        xy = (int(pixel.x * (thumb.width - 1)), int(pixel.y * (thumb.height - 1)))
        assert _near(thumb.getpixel(xy), pixel.rgb), (pixel, thumb.getpixel(xy))


CASE_PARAMS = [pytest.param(case, id=case.id) for case in CASES]


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_cli_import(via_cli: Outcome, case: Case) -> None:
    check_case(via_cli, case)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_upload_page(via_upload_page: Outcome, case: Case) -> None:
    check_case(via_upload_page, case)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_api_upload(via_api: Outcome, case: Case) -> None:
    check_case(via_api, case)


ACCEPTED = sum(case.accept for case in CASES)


def test_each_entry_point_reports_exactly_the_corpus(via_cli: Outcome, via_upload_page: Outcome,
                                                     via_api: Outcome) -> None:
    refused = {case.name for case in CASES if not case.accept}
    for outcome in (via_cli, via_upload_page, via_api):
        assert set(outcome.rejected) == refused
        assert len(outcome.stored) == ACCEPTED
    assert via_cli.statuses["exit_code"] == 0  # bad files are reported, the import goes on
    assert f"{ACCEPTED} imported, 0 duplicates, {len(refused)} rejected" in \
        via_cli.pages["output"]
    assert via_upload_page.statuses == {"upload": 200, "detail": 200}
    assert via_api.statuses == {"upload": 200, "imported": ACCEPTED}


def test_names_are_kept_and_escaped_on_pages(via_upload_page: Outcome) -> None:
    for name in (UNICODE_NAME, LONG_NAME, HTML_NAME):
        assert name in via_upload_page.stored  # kept byte for byte
    for page in via_upload_page.pages.values():
        assert "<img src=x" not in page and "<script>" not in page
    assert str(escape(HTML_NAME)) in via_upload_page.pages["detail"]
    assert str(escape(UNICODE_NAME)) in via_upload_page.pages["project"]
    # The page shows the rejections' names escaped too (zip entries with quotes and dots).
    assert str(escape("Rejected hostile.zip!../evil.png: zip entry with '..'")) in \
        via_upload_page.pages["project"]


# --- request size limits -------------------------------------------------------------------


@pytest.fixture
def small_app(tmp_path: Path) -> Iterator[Flask]:
    """An app whose request limit is 1 MiB, with a lead "lena"."""
    app = _new_app(tmp_path / "data", MAX_UPLOAD_MB=1)
    with app.app_context():
        create_user("lena", PASSWORD, "lead")
        yield app
        db.session.remove()
        db.engine.dispose()


def _two_mib_upload() -> dict[str, tuple[io.BytesIO, str]]:
    return {"files": (io.BytesIO(b"\x00" * 2 * 2**20), "big.png")}


def test_api_upload_over_the_limit_is_413_json(small_app: Flask) -> None:
    project = _fake_project("small", ["a"])
    token = create_api_token(create_user("api-lead", PASSWORD, "lead"))
    response = small_app.test_client().post(
        f"/api/v1/projects/{project.id}/images", data=_two_mib_upload(),
        headers={"Authorization": f"Bearer {token}"}, content_type="multipart/form-data")
    assert response.status_code == 413
    assert "1 MiB limit (LABELER_MAX_UPLOAD_MB)" in response.json["detail"]
    assert db.session.scalar(select(Image)) is None


@pytest.mark.parametrize("csrf", [False, True], ids=["no-csrf", "csrf"])
def test_upload_page_over_the_limit_is_a_readable_413_page(small_app: Flask, csrf: bool) -> None:
    project = _fake_project("small", ["a"])
    client = small_app.test_client()
    login(client, "lena")
    # With CSRF on, the check reads the form first: the 413 must still win over a 400/500.
    small_app.config["WTF_CSRF_ENABLED"] = csrf
    response = client.post(f"/projects/{project.id}/upload", data=_two_mib_upload(),
                           content_type="multipart/form-data")
    assert response.status_code == 413 and response.mimetype == "text/html"
    assert "Upload too large" in response.text and "1 MiB limit" in response.text


# --- JSON bodies ---------------------------------------------------------------------------


@pytest.fixture
def api(app: Flask, lead) -> Callable[..., object]:
    """POST to the API as a lead, with a Bearer token."""
    client, token = app.test_client(), create_api_token(lead)

    def post(path: str, **kwargs: object):
        return client.post(f"/api/v1{path}", headers={"Authorization": f"Bearer {token}"},
                           **kwargs)

    return post


NOT_JSON = "must be JSON with Content-Type"
INVALID = "not valid JSON"
NOT_OBJECT = "must be an object"
NOT_INT = "Field 'image_id' should be"

RAW_BODIES = [
    pytest.param(b"image_id=1&label=sea", "application/x-www-form-urlencoded", NOT_JSON,
                 id="form-encoded"),
    pytest.param(b"not json at all", "text/plain", NOT_JSON, id="text"),
    pytest.param(b"{image_id: 1,", "application/json", INVALID, id="broken-syntax"),
    pytest.param(b"\xff\xfe\x00garbage", "application/json", INVALID, id="bad-utf8"),
    pytest.param(b"[" * 100_000, "application/json", INVALID, id="deep-nesting"),
    pytest.param(b'{"image_id": ' + b"9" * 5000 + b"}", "application/json", INVALID,
                 id="5000-digit-int"),
    pytest.param(b"", "application/json", INVALID, id="empty"),
]


@pytest.mark.parametrize("path", ["/projects/{id}/annotations", "/projects"])
@pytest.mark.parametrize("body, content_type, detail", RAW_BODIES)
def test_bodies_that_are_not_json_are_400(app, api, path, body, content_type, detail) -> None:
    project = _fake_project("json", ["sea"])
    response = api(path.format(id=project.id), data=body, content_type=content_type)
    assert response.status_code == 400, response.text
    assert detail in response.json["detail"]


FIELD_BODIES = [
    pytest.param([1, 2], NOT_OBJECT, id="list"),
    pytest.param("a string", NOT_OBJECT, id="string"),
    pytest.param(None, NOT_OBJECT, id="null"),
    pytest.param(7, NOT_OBJECT, id="number"),
    pytest.param({"image_id": "x", "label": "sea"}, NOT_INT, id="image_id-str"),
    pytest.param({"image_id": 1.5, "label": "sea"}, NOT_INT, id="image_id-float"),
    pytest.param({"image_id": True, "label": "sea"}, NOT_INT, id="image_id-bool"),
    pytest.param({"image_id": {"id": 1}, "label": "sea"}, NOT_INT, id="image_id-dict"),
    pytest.param({"image_id": [1], "label": "sea"}, NOT_INT, id="image_id-list"),
    pytest.param({"image_id": 10**30, "label": "sea"}, NOT_INT, id="image_id-huge"),
    pytest.param({"image_id": None, "label": "sea"}, "Field 'image_id' should be a valid "
                 "integer", id="image_id-null"),
    pytest.param({"image_id": 1, "label": 5}, "Field 'label' should be a valid string",
                 id="label-number"),
    pytest.param({"image_id": 1, "label": ["sea"]}, "Field 'label' should be a valid string",
                 id="label-list"),
]


@pytest.mark.parametrize("body, detail", FIELD_BODIES)
def test_annotation_fields_of_wrong_type_are_400(app, api, body, detail) -> None:
    project = _fake_project("json", ["sea"])
    response = api(f"/projects/{project.id}/annotations", data=json.dumps(body),
                   content_type="application/json")  # json=None would send no body at all
    assert response.status_code == 400, response.text
    assert detail in response.json["detail"]


@pytest.mark.parametrize("body, detail", [
    pytest.param(None, NOT_OBJECT, id="null"),
    pytest.param({"name": 5}, "Field 'name' should be a valid string", id="name-number"),
    pytest.param({"name": None}, "Field 'name' should be a valid string", id="name-null"),
    pytest.param({}, "Missing field 'name'", id="name-missing"),
    pytest.param({"name": "   "}, "at least one of them visible", id="name-blank"),
    pytest.param({"name": "\x1c\u3000"}, "at least one of them visible", id="name-isspace"),
    pytest.param({"name": "a\x00b"}, "no NUL", id="name-nul"),
    pytest.param({"name": "p", "classes": "a,b"}, "Field 'classes' should be a valid list",
                 id="classes-str"),
    pytest.param({"name": "p", "classes": [1, None]}, "Field 'classes[0]' should be a valid "
                 "string", id="classes-ints"),
    pytest.param({"name": "p", "colour": "red"}, "The field 'colour' is not one this request "
                 "takes", id="unknown-field"),
])
def test_project_fields_of_wrong_type_are_400(api, body, detail) -> None:
    response = api("/projects", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.text
    assert detail in response.json["detail"]


def test_a_50_mb_json_body_is_413_before_it_is_read(app, api) -> None:
    project = _fake_project("json", ["sea"])
    body = b'{"image_id": 1, "label": "' + b"a" * (50 * 2**20) + b'"}'
    for path in (f"/projects/{project.id}/annotations", "/projects"):
        stream = io.BytesIO(body)
        response = api(path, input_stream=stream, content_length=len(body),
                       content_type="application/json")
        assert response.status_code == 413, response.text
        assert "at most 1,048,576 bytes" in response.json["detail"]
        assert stream.tell() == 0  # refused from Content-Length: not a byte read or parsed


def test_a_json_body_without_length_is_cut_off_at_the_json_limit(app, api) -> None:
    project = _fake_project("json", ["sea"])
    body = b'{"image_id": 1, "label": "' + b"a" * (2 * 2**20) + b'"}'
    response = api(f"/projects/{project.id}/annotations", input_stream=io.BytesIO(body),
                   content_type="application/json",
                   environ_overrides={"wsgi.input_terminated": True})  # chunked: no length
    assert response.status_code == 413, response.text
    assert response.json["error"]


# --- HTML in class names -------------------------------------------------------------------

SCRIPT_CLASS = "<script>alert(1)</script>"
QUOTES_CLASS = "\"quotes\" & <b>"


def test_html_in_class_names_is_escaped_on_every_page(app, api, lead_client) -> None:
    created = api("/projects", json={"name": "xss <i>", "classes": [SCRIPT_CLASS]})
    assert created.status_code == 201, created.text
    project_id = created.json["id"]
    form = lead_client.post(f"/projects/{project_id}/classes", data={"name": QUOTES_CLASS})
    assert form.status_code == 302
    names = {c.name for c in db.session.get(Project, project_id).classes}
    assert names == {SCRIPT_CLASS, QUOTES_CLASS}  # stored as typed, escaped only on output

    for page in ("", "/label", "/gallery", "/dashboard"):
        response = lead_client.get(f"/projects/{project_id}{page}")
        assert response.status_code == 200, page
        text = response.text
        assert SCRIPT_CLASS not in text and "<b>" not in text and "<i>" not in text, page
        if page != "/dashboard":  # the dashboard fills its class table from the API (JSON)
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, page
            assert "&#34;quotes&#34; &amp; &lt;b&gt;" in text, page
