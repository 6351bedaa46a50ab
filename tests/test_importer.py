"""Import of real photos, every accepted format, duplicates, and bad or hostile files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from labeler.extensions import db
from labeler.importer import blob_store, import_paths
from labeler.models import Annotation, Image
from labeler.projects import create_project, project_counts
from tests import imagegen


@pytest.fixture
def project(app):
    return create_project("landscapes", ["sea", "forest"])


def images_of(project) -> list[Image]:
    return list(db.session.scalars(select(Image).where(Image.project_id == project.id)))


def test_real_photos_are_imported_with_size_format_and_thumbnail(project, tmp_path):
    photos = imagegen.real_photos()
    for name, array in photos.items():
        PILImage.fromarray(array).save(tmp_path / f"{name}.jpg", quality=92)

    report = import_paths(project, [tmp_path])

    assert report.imported == len(photos) and not report.rejected
    store = blob_store()
    for image in images_of(project):
        stem = Path(image.original_name).stem
        assert (image.height, image.width) == photos[stem].shape[:2]
        assert image.format == "JPEG"
        assert store.image_path(image.sha256, image.format).read_bytes() == (
            tmp_path / f"{stem}.jpg").read_bytes()
        with PILImage.open(store.thumbnail_path(image.sha256)) as thumb:
            assert max(thumb.size) == 256 and thumb.mode == "RGB"


def test_every_supported_format_is_imported(project, tmp_path):
    files = imagegen.format_zoo()
    imagegen.write_files(tmp_path / "zoo", files)

    report = import_paths(project, [tmp_path / "zoo"])

    assert report.rejected == []
    assert report.imported == len(files)
    formats = {Path(i.original_name).name: i.format for i in images_of(project)}
    assert formats["image.webp"] == "WEBP" and formats["image.tiff"] == "TIFF"
    assert formats["animated.gif"] == "GIF" and formats["cmyk.jpg"] == "JPEG"


def test_sixteen_bit_png_thumbnail_keeps_its_tones(project, tmp_path):
    imagegen.write_files(tmp_path, {"sixteen_bit.png": imagegen.format_zoo()["sixteen_bit.png"]})
    import_paths(project, [tmp_path])
    (image,) = images_of(project)
    with PILImage.open(blob_store().thumbnail_path(image.sha256)) as thumb:
        grey = thumb.convert("L")
        # A naive 16->8 bit conversion clips to white; the gradient must survive.
        assert grey.getextrema()[0] < 20 and grey.getextrema()[1] > 235


def test_exif_orientation_is_applied_to_size_and_thumbnail(project, tmp_path):
    imagegen.write_files(tmp_path, {"rotated.jpg": imagegen.exif_rotated_jpeg(300, 200)})
    import_paths(project, [tmp_path])
    (image,) = images_of(project)
    assert (image.width, image.height) == (200, 300)  # displayed as portrait
    with PILImage.open(blob_store().thumbnail_path(image.sha256)) as thumb:
        assert thumb.height > thumb.width


def test_mixed_folder_imports_good_once_and_names_each_rejection(project, tmp_path):
    folder = tmp_path / "mixed"
    good = imagegen.write_files(folder, {
        "a.jpg": imagegen.encode(PILImage.fromarray(imagegen.gradient(seed=20)), "JPEG"),
        "b.png": imagegen.encode(PILImage.fromarray(imagegen.gradient(seed=21)), "PNG"),
    })
    (folder / "sub").mkdir()
    (folder / "sub" / "a-copy.jpg").write_bytes(good[0].read_bytes())
    bad = imagegen.bad_files()
    imagegen.write_files(folder / "bad", bad)

    report = import_paths(project, [folder])

    assert report.imported == 2
    assert report.duplicates == 1
    rejected = {Path(r.name).name: r.reason for r in report.rejected}
    assert set(rejected) == set(bad)
    assert "empty" in rejected["empty.jpg"]
    assert "truncated" in rejected["truncated.jpg"] or "corrupt" in rejected["truncated.jpg"]
    assert "decompression bomb" in rejected["bomb.png"]
    assert "not an image" in rejected["notes.jpg"]
    assert "not an image" in rejected["vector.png"]
    assert len(images_of(project)) == 2


def test_reimport_counts_duplicates_and_stores_nothing_new(project, tmp_path):
    imagegen.write_files(tmp_path, imagegen.format_zoo())
    first = import_paths(project, [tmp_path])
    stored = sorted(p for p in (blob_store().root / "images").rglob("*") if p.is_file())

    second = import_paths(project, [tmp_path])

    assert second.imported == 0 and second.duplicates == first.imported
    assert sorted(p for p in (blob_store().root / "images").rglob("*") if p.is_file()) == stored


def test_same_bytes_in_two_projects_are_stored_once(app, tmp_path):
    imagegen.write_files(tmp_path, {"x.png": imagegen.format_zoo()["alpha.png"]})
    one, two = create_project("one"), create_project("two")
    assert import_paths(one, [tmp_path]).imported == 1
    assert import_paths(two, [tmp_path]).imported == 1
    files = [p for p in (blob_store().root / "images").rglob("*") if p.is_file()]
    assert len(files) == 1


def test_hostile_zip_imports_only_the_safe_image(project, tmp_path):
    archive = imagegen.hostile_zip(tmp_path / "upload.zip")

    report = import_paths(project, [archive])

    assert report.imported == 1
    reasons = {r.name.split("!", 1)[1]: r.reason for r in report.rejected}
    assert "zip-slip" in reasons["../../escape.png"]
    assert "absolute path" in reasons["/etc/absolute.png"]
    assert "zip bomb" in reasons["bomb.bmp"]
    assert "archive inside an archive" in reasons["nested.zip"]
    assert not (tmp_path.parent / "escape.png").exists()
    assert not Path("/etc/absolute.png").exists()


def test_corrupt_zip_is_rejected_with_reason(project, tmp_path):
    path = tmp_path / "broken.zip"
    imagegen.hostile_zip(path)
    data = path.read_bytes()
    path.write_bytes(data[:30] + b"\x00" * 40 + data[70:])  # damage the first entry
    report = import_paths(project, [path])
    assert report.rejected, "a damaged entry must be reported, not crash the import"


def test_labels_from_folders_creates_classes_and_annotations(project, tmp_path):
    for index, folder in enumerate(["sea", "sea", "mountain"]):
        image = PILImage.fromarray(imagegen.gradient(seed=30 + index))
        (tmp_path / folder).mkdir(exist_ok=True)
        image.save(tmp_path / folder / f"{index}.png")

    report = import_paths(project, [tmp_path], labels_from_folders=True)

    assert report.imported == 3 and report.labelled == 3
    counts = project_counts(project)
    assert counts["per_class"] == {"sea": 2, "forest": 0, "mountain": 1}
    assert db.session.scalar(select(func.count()).select_from(Annotation)) == 3


def test_labels_from_zip_folders(project, tmp_path):
    path = tmp_path / "classes.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for index, folder in enumerate(["sea", "forest"]):
            archive.writestr(f"data/{folder}/{index}.png", imagegen.encode(
                PILImage.fromarray(imagegen.gradient(seed=40 + index)), "PNG"))
    report = import_paths(project, [path], labels_from_folders=True)
    assert report.labelled == 2
    assert project_counts(project)["per_class"] == {"sea": 1, "forest": 1}


def test_missing_path_is_reported(project, tmp_path):
    report = import_paths(project, [tmp_path / "nope"])
    assert report.rejected[0].reason == "no such file or folder"


def test_file_over_size_limit_is_refused(app, project, tmp_path):
    app.config["MAX_UPLOAD_MB"] = 1
    (tmp_path / "big.bmp").write_bytes(imagegen.encode(
        PILImage.fromarray(imagegen.gradient(1000, 800)), "BMP"))  # ~2.4 MB
    report = import_paths(project, [tmp_path])
    assert "limit" in report.rejected[0].reason


def test_progress_reaches_total(project, tmp_path):
    imagegen.write_files(tmp_path, imagegen.format_zoo())
    calls = []
    import_paths(project, [tmp_path], on_progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (len(imagegen.format_zoo()), len(imagegen.format_zoo()))


def test_abandoned_upload_spools_are_removed_and_live_ones_kept(tmp_path):
    import os
    import time

    from labeler.importer import ABANDONED_SPOOL_AGE_S, remove_abandoned_upload_spools

    spool = tmp_path / "tmp"
    old, live = spool / "upload-dead", spool / "upload-live"
    for folder in (old, live):
        folder.mkdir(parents=True)
        (folder / "part.zip").write_bytes(b"x" * 100)
    ancient = time.time() - ABANDONED_SPOOL_AGE_S - 60
    os.utime(old, (ancient, ancient))
    (spool / "upload-a-file").write_bytes(b"not a folder")

    assert remove_abandoned_upload_spools(tmp_path) == 1
    assert not old.exists() and live.exists() and (spool / "upload-a-file").exists()
