from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from labeler.storage import BlobStore, atomic_folder, atomic_writer

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
    store = BlobStore(tmp_path)

    def fail(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        store.put_image(SHA, "PNG", b"data")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_reader_sees_the_old_content_during_and_after_a_failed_write(tmp_path):
    path = tmp_path / "head.npz"
    with atomic_writer(path) as handle:
        handle.write(b"old complete content")
    with pytest.raises(RuntimeError), atomic_writer(path) as handle:
        handle.write(b"new, half")
        handle.flush()
        assert path.read_bytes() == b"old complete content"  # a reader meanwhile
        raise RuntimeError("killed half-way")
    assert path.read_bytes() == b"old complete content"
    assert [p.name for p in tmp_path.iterdir()] == ["head.npz"]  # no temporary file left


def test_finished_files_get_the_mode_asked_for(tmp_path):
    with atomic_writer(tmp_path / "shared.csv", text=True) as handle:
        handle.write("a,b\r\n")
    with atomic_writer(tmp_path / "private.zip", mode=0o600) as handle:
        handle.write(b"zip")
    assert stat.S_IMODE((tmp_path / "shared.csv").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.zip").stat().st_mode) == 0o600
    assert (tmp_path / "shared.csv").read_bytes() == b"a,b\r\n"  # newline="": unchanged


def test_content_and_rename_are_flushed_to_disk_unless_asked_not_to(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    with atomic_writer(tmp_path / "durable") as handle:
        handle.write(b"x")
        temporary = handle.name
    assert synced == [temporary, str(tmp_path)]  # the content, then the folder's new entry
    synced.clear()
    with atomic_writer(tmp_path / "fast", fsync=False) as handle:
        handle.write(b"x")
    assert synced == []


def test_the_temporary_file_is_hidden_and_ends_with_the_suffix_asked_for(tmp_path):
    with atomic_writer(tmp_path / "model.keras", suffix=".keras") as handle:
        name = Path(handle.name)
        assert name.parent == tmp_path and name.name.startswith(".model.keras.")
        assert name.suffix == ".keras"
        name.write_bytes(b"written by name, as Keras does")
    assert (tmp_path / "model.keras").read_bytes() == b"written by name, as Keras does"


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "export") as folder:
        (folder / "a.txt").write_text("a")
        raise RuntimeError("failed half-way")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "export").mkdir()  # an empty folder may be replaced
    with atomic_folder(tmp_path / "export") as folder:
        (folder / "cat").mkdir()
        (folder / "cat" / "1.png").write_bytes(b"png")
    assert (tmp_path / "export" / "cat" / "1.png").read_bytes() == b"png"
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
