from __future__ import annotations

import pytest

from labeler.storage import BlobStore

SHA = "ab" + "0" * 62


def test_paths_are_content_addressed(tmp_path):
    store = BlobStore(tmp_path)
    assert store.image_path(SHA, "JPEG") == tmp_path / "images" / "ab" / f"{SHA}.jpg"
    assert store.thumbnail_path(SHA) == tmp_path / "thumbs" / "ab" / f"{SHA}.jpg"


@pytest.mark.parametrize("bad", ["../../etc/passwd", "AB" + "0" * 62, "", "0" * 63])
def test_anything_but_a_hex_digest_is_refused(tmp_path, bad):
    with pytest.raises(ValueError):
        BlobStore(tmp_path).image_path(bad, "PNG")


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path):
    store = BlobStore(tmp_path)
    store.put_image(SHA, "PNG", b"data")
    store.put_thumbnail(SHA, b"thumb")
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert files == [f"{SHA}.jpg", f"{SHA}.png"]
    assert store.read_image(SHA, "PNG") == b"data"


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    import os

    store = BlobStore(tmp_path)

    def fail(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        store.put_image(SHA, "PNG", b"data")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
