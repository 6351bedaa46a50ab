"""What an imported image is called: its path relative to what was imported, never where the
file sat on the server, and always text a database stores."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from labeler.embeddings import register_backbone
from labeler.extensions import db
from labeler.importer import import_paths
from labeler.jobs import runner
from labeler.models import Image
from labeler.projects import create_project
from labeler.sources import upload_display_name
from labeler.users import create_api_token, create_user
from tests import imagegen
from tests.builders import auth
from tests.fakes import FAKE_BACKBONE, FakeBackbone


@pytest.fixture
def project(app):
    """A project on the fast fake backbone (uploads start a background embed)."""
    register_backbone(FAKE_BACKBONE, lambda cache_dir: FakeBackbone())
    yield create_project("holidays", ["sea", "forest"], backbone=FAKE_BACKBONE)
    assert runner(app).wait_idle(60)


def png(seed: int) -> bytes:
    return imagegen.encode(PILImage.fromarray(imagegen.gradient(16, 16, seed)), "PNG")


def write(folder: Path, files: dict[str, bytes]) -> list[Path]:
    paths = []
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


def names(project) -> set[str]:
    return set(db.session.scalars(select(Image.original_name)
                                  .where(Image.project_id == project.id)))


def zip_of(path: Path, entries: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zip_of_bytes(entries))
    return path


def zip_of_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_folder_zip_and_file_imports_name_images_relative_to_what_was_imported(
        project, tmp_path, monkeypatch):
    holiday = tmp_path / "srv" / "photos" / "holiday"
    write(holiday, {"beach.png": png(1), "2024/dunes.png": png(2)})
    zip_of(holiday / "trip.zip", {"day1/boat.png": png(3)})
    album = zip_of(tmp_path / "srv" / "album.zip", {"harbour.png": png(4)})
    single = write(tmp_path / "srv" / "loose", {"single.png": png(5)})[0]
    write(tmp_path / "srv" / "here", {"cwd.png": png(6)})
    monkeypatch.chdir(tmp_path / "srv" / "here")

    report = import_paths(project, [holiday, album, single, Path(".")])

    assert report.imported == 6 and not report.rejected
    assert names(project) == {
        "holiday/beach.png", "holiday/2024/dunes.png", "holiday/trip.zip!day1/boat.png",
        "album.zip!harbour.png", "single.png", "here/cwd.png"}


def test_upload_names_are_the_file_names_alone(app, project):
    token = create_api_token(create_user("lucy", "password-123", "lead"))
    files = [(io.BytesIO(png(1)), "/home/me/holiday/beach.png"),
             (io.BytesIO(zip_of_bytes({"inside/boat.png": png(2)})), "../../srv/uploads/trip.zip")]
    response = app.test_client().post(f"/api/v1/projects/{project.id}/images",
                                      data={"files": files}, headers=auth(token),
                                      content_type="multipart/form-data")
    assert response.status_code == 200, response.text
    assert names(project) == {"beach.png", "trip.zip!inside/boat.png"}


def test_a_file_name_that_is_not_utf8_is_imported_with_a_replacement_character(
        project, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / os.fsdecode(b"caf\xe9.png")).write_bytes(png(1))  # Latin-1 bytes on disk
    (folder / "fine.png").write_bytes(png(2))

    report = import_paths(project, [folder])

    assert report.imported == 2 and not report.rejected
    assert names(project) == {"odd/caf\ufffd.png", "odd/fine.png"}


def test_a_zip_whose_names_claim_utf8_wrongly_is_refused_with_a_sentence(project, tmp_path):
    data = bytearray(zip_of_bytes({"abc.png": png(1)}).replace(b"abc.png", b"a\xffc.png"))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        offset = data.find(signature) + flags_at  # general purpose flags: bit 11 = UTF-8
        struct.pack_into("<H", data, offset, struct.unpack_from("<H", data, offset)[0] | 0x800)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.zip").write_bytes(bytes(data))
    (tmp_path / "in" / "good.png").write_bytes(png(2))

    report = import_paths(project, [tmp_path / "in"])

    assert report.imported == 1 and names(project) == {"in/good.png"}
    (rejected,) = report.rejected
    assert rejected.name == "in/bad.zip" and "re-create the zip" in rejected.reason


def test_upload_names_are_text_a_database_stores():
    assert upload_display_name("a\x00b.png", 0) == "a\ufffdb.png"  # PostgreSQL refuses NUL
    assert upload_display_name("../../etc/\udcff.png", 0) == "\ufffd.png"
    assert upload_display_name("  ", 2) == "upload-3"


def test_next_and_the_export_show_no_server_path(project, tmp_path, lead_client, app):
    write(tmp_path / "srv" / "holiday", {"beach.png": png(1)})
    import_paths(project, [tmp_path / "srv" / "holiday"])
    token = create_api_token(create_user("ann", "password-123"))
    item = app.test_client().get(f"/api/v1/projects/{project.id}/next",
                                 headers=auth(token)).json
    exported = lead_client.get(f"/api/v1/projects/{project.id}/export?format=jsonl"
                               "&include_predictions=1").text
    assert str(tmp_path) not in str(item) and str(tmp_path) not in exported
    assert "holiday/beach.png" in str(item) and '"holiday/beach.png"' in exported
