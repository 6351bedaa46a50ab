"""Streamed CSV / JSON Lines downloads: odd names survive a real server, and a failure comes
before the first byte as an ordinary error answer, never as a download cut short."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests
from gunicorn.http.wsgi import HEADER_VALUE_RE
from PIL import Image as PILImage
from sqlalchemy.exc import OperationalError

from labeler import create_app, export
from labeler.annotations import record_label
from labeler.database import upgrade_database
from labeler.embeddings import register_backbone
from labeler.export_http import attachment
from labeler.extensions import db
from labeler.importer import import_paths
from labeler.jobs import JobKind, run_inline
from labeler.models import Image
from labeler.project_vectors import embed_project
from labeler.projects import add_class, class_by_name, create_project
from labeler.training import run_round
from labeler.users import create_api_token, create_user
from tests.builders import auth, images
from tests.dbutil import database_config
from tests.fakes import FAKE_BACKBONE, FakeBackbone
from tests.serverproc import ServerProcess

# What a fuzzer makes: scripts beyond Latin-1, emoji, quotes, commas, control characters,
# a right-to-left override, a formula, and names at the length limits.
ODD_PROJECT = 'Ünï "海" 🌊, a\x01b \u202e ' + "ß" * 150
ODD_CLASSES = ["a,b", 'c"d', "海\x02", "=cmd|' /C calc'!A0", "n" * 200]
ODD_FILES = ['é,"x".png', "line\nbreak.png", "\x01ctl.png", "海 🌊.png", "n" * 251 + ".png",
             "; rm -rf ~.png"]


def filename_star(disposition: str) -> str:
    """The exact file name of an RFC 6266 ``Content-Disposition`` (``filename*``)."""
    star = disposition.split("filename*=", 1)[1]
    assert star.startswith("UTF-8''")
    return unquote(star.removeprefix("UTF-8''"))


def odd_project(home: Path) -> tuple[int, str, dict[str, int]]:
    """A project with odd names everywhere, embedded, one round trained, two images
    labelled; returns (project id, a lead's token, image id of each file name)."""
    folder = home.parent / "odd-files"
    folder.mkdir(parents=True)
    for index, name in enumerate(ODD_FILES):
        PILImage.new("RGB", (24, 24), (40 * index, 255 - 40 * index, 90)).save(
            folder / name, "PNG")
    app = create_app({"HOME": home, "IMPORT_WORKERS": 2, "LOGIN_RATE_LIMIT": "",
                      **database_config(home)})
    upgrade_database(app)
    register_backbone(FAKE_BACKBONE, lambda cache_dir: FakeBackbone())
    with app.app_context():
        lead = create_user("lead", "correct-horse-battery", "lead")
        token = create_api_token(lead)
        project = create_project(ODD_PROJECT, ODD_CLASSES, backbone=FAKE_BACKBONE)
        assert import_paths(project, [folder]).imported == len(ODD_FILES)
        assert run_inline(JobKind.EMBED, project.id, embed_project).status == "succeeded"
        images = list(db.session.query(Image).order_by(Image.id))
        for image, name in zip(images[:2], ODD_CLASSES[:2], strict=True):
            record_label(image, class_by_name(project, name), lead)
        db.session.commit()
        assert run_inline(JobKind.RETRAIN, project.id, run_round).status == "succeeded"
        ids = {image.original_name.rsplit("/", 1)[-1]: image.id for image in images}
        project_id = project.id
        db.session.remove()
        db.engine.dispose()  # the server opens the same database
    return project_id, token, ids


def test_odd_names_export_whole_through_gunicorn(tmp_path):
    project_id, token, ids = odd_project(tmp_path / "home")
    with ServerProcess(tmp_path / "home", workers=1, threads=2) as server:
        url = f"{server.url}/api/v1/projects/{project_id}/export"
        csv_response = requests.get(url, params={"format": "csv", "include_predictions": "true"},
                                    headers=auth(token), timeout=60)
        jsonl_response = requests.get(url, params={"format": "jsonl",
                                                   "include_predictions": "true"},
                                      headers=auth(token), timeout=60)
    log = server.log()
    assert "Error handling request" not in log, log
    for response, suffix in ((csv_response, "csv"), (jsonl_response, "jsonl")):
        assert response.status_code == 200, response.text
        disposition = response.headers["Content-Disposition"]
        assert filename_star(disposition) == f"{export.safe_name(ODD_PROJECT)}.{suffix}"
    rows = list(csv.DictReader(io.StringIO(csv_response.content.decode("utf-8"))))
    records = [json.loads(line) for line in jsonl_response.content.decode("utf-8").splitlines()]
    for exported in (rows, records):
        assert {row["file_name"].rsplit("/", 1)[-1]: int(row["image_id"])
                for row in exported} == ids
        assert sorted(row["label"] for row in exported if row["label"]) == sorted(
            ODD_CLASSES[:2])
        assert all(row["predicted"] in ODD_CLASSES for row in exported)


def test_the_download_name_header_is_latin_1_whatever_the_project_is_called():
    for name in (f"{export.safe_name(ODD_PROJECT)}.csv", "海.jsonl", "plain.csv"):
        value = attachment(name, "project-7")["Content-Disposition"]
        value.encode("latin-1")  # what gunicorn requires of every header
        assert value.startswith('attachment; filename="') and "\n" not in value
        if name == "plain.csv":
            assert value == 'attachment; filename="plain.csv"'
        else:
            assert filename_star(value) == name
    assert attachment("海.csv", "project-7")["Content-Disposition"].startswith(
        'attachment; filename="project-7.csv"')


def fuzzed_names(count: int, seed: int = 14) -> list[str]:
    """Names a fuzzer makes: code points of every kind but NUL (which PostgreSQL refuses in
    text, and the importer replaces): control characters, Latin-1, CJK, emoji,
    quotes, separators; any length up to 300."""
    rng = random.Random(seed)
    alphabet = [chr(c) for c in (*range(1, 0x250), *range(0x2000, 0x2070), *range(0x4E00, 0x4E40),
                                 *range(0x1F300, 0x1F340), 0xFEFF, 0xFFFD)]
    return [name for _ in range(count)
            if (name := "".join(rng.choices(alphabet, k=rng.randint(1, 300))))]


def test_fuzzed_project_names_give_a_header_gunicorn_sends_and_the_exact_name():
    for name in fuzzed_names(2000):
        download = f"{export.safe_name(name, 'project-3')}.csv"
        value = attachment(download, "project-3")["Content-Disposition"]
        assert HEADER_VALUE_RE.fullmatch(value), value
        assert download == (filename_star(value) if "filename*" in value
                            else value.split('"')[1])


def test_fuzzed_file_and_class_names_come_back_whole_from_csv_and_jsonl(project, alice):
    names = fuzzed_names(24, seed=3)
    for image, name in zip(images(project), names, strict=True):
        image.original_name = name
    odd_class = add_class(project, "".join(fuzzed_names(1, seed=5))[:150].strip() or "x")
    for image in images(project)[::3]:
        record_label(image, odd_class, alice)
    db.session.commit()

    rows = list(csv.DictReader(io.StringIO("".join(export.iter_csv(
        project, include_predictions=True)), newline="")))
    records = [json.loads(line) for line in "".join(export.iter_jsonl(
        project, include_predictions=True)).split("\n") if line]

    for exported in (rows, records):
        assert [row["file_name"] for row in exported] == names
        assert {row["label"] for row in exported} - {"", None} == {odd_class.name}


@pytest.mark.parametrize("export_format", ["csv", "jsonl"])
def test_a_failing_export_is_a_json_error_before_the_first_byte(
        app, lead_client, project, monkeypatch, export_format):
    def broken(*args, **kwargs):
        raise OperationalError("SELECT ...", {}, Exception("disk I/O error"))
        yield  # a generator, as the real one is

    monkeypatch.setattr(export, "iter_rows", broken)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)  # answer it, as served

    response = lead_client.get(f"/api/v1/projects/{project.id}/export?format={export_format}"
                               "&include_predictions=true")

    assert response.status_code == 500
    assert response.is_json and response.json["error"] == "Internal Server Error"
    assert "Content-Disposition" not in response.headers


def test_the_export_page_streams_odd_project_names_too(app, lead_client, project):
    project.name = ODD_PROJECT
    db.session.commit()
    response = lead_client.get(f"/projects/{project.id}/export/csv?include_predictions=1")
    assert response.status_code == 200
    response.headers["Content-Disposition"].encode("latin-1")
    assert len(list(csv.DictReader(io.StringIO(response.text)))) == 24
