"""The exported ``.keras`` file predicts what the app shows, image for image.

The app's side is its stored predictions (what ``export --format csv
--include-predictions`` writes), computed from vectors of the embed job; the file's side
is the README's snippet run in a fresh Python that never imports labeler. Images: a
sample of the demo's real Fashion-MNIST images (28×28 greyscale, upscaled to 224) and
photos that are small, large (JPEG), non-square, greyscale, EXIF-rotated and transparent.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from labeler.demo import load_demo_images
from labeler.embeddings import DEFAULT_BACKBONE, register_backbone
from labeler.export import iter_rows
from labeler.extensions import db
from labeler.importer import import_paths
from labeler.jobs import run_inline
from labeler.models import Image as ImageRow
from labeler.models import JobStatus
from labeler.project_vectors import embed_project
from labeler.projects import class_by_name, create_project
from labeler.queue import lease_next, submit_label
from labeler.storage import file_sha256
from labeler.training import run_round
from labeler.users import create_user
from tests import imagegen
from tests.exported_model import predict_with_readme_snippet

DEMO_SAMPLE = 150
LABELS_PER_CLASS = 3
CONFIDENCE_TOLERANCE = 1e-3


def _photo(name: str) -> Image.Image:
    return Image.fromarray(imagegen.real_photos()[name])


def _odd_photos() -> dict[str, bytes]:
    """Photos of every shape the parity must hold for, one file each."""
    rotated = Image.Exif()
    rotated[0x0112] = 6  # stored landscape, displayed portrait
    transparent = _photo("coffee").convert("RGBA")
    transparent.putalpha(Image.linear_gradient("L").resize(transparent.size))
    encode = imagegen.encode
    return {
        "small.png": encode(_photo("chelsea").resize((20, 13)), "PNG"),
        "tiny_grey.png": encode(_photo("coffee").convert("L").resize((9, 9)), "PNG"),
        "large.jpg": encode(Image.fromarray(imagegen.photo_mosaic(3200, 2400)), "JPEG",
                            quality=92),
        "large_portrait.jpg": encode(Image.fromarray(imagegen.photo_mosaic(1100, 2000, 1)),
                                     "JPEG", quality=90),
        "wide.png": encode(_photo("china").crop((0, 100, 640, 260)), "PNG"),
        "tall.jpg": encode(_photo("rocket").crop((200, 0, 380, 427)), "JPEG", quality=90),
        "grey.jpg": encode(_photo("astronaut").convert("L"), "JPEG", quality=90),
        "rotated.jpg": encode(_photo("flower"), "JPEG", quality=90, exif=rotated.tobytes()),
        "transparent.png": encode(transparent, "PNG"),
    }


def _demo_sample(folder) -> dict[str, str]:
    """A seeded sample of the demo's images as PNG files; returns file name -> true class."""
    images, labels, names = load_demo_images()
    picked = np.random.default_rng(12).choice(len(images), DEMO_SAMPLE, replace=False)
    truth = {}
    for index in picked:
        name = f"demo-{index:04d}.png"
        Image.fromarray(images[index], mode="L").save(folder / name)
        truth[name] = names[labels[index]]
    return truth


@pytest.mark.integration
def test_exported_model_agrees_with_the_app_on_every_image(app, backbone, tmp_path):
    register_backbone(DEFAULT_BACKBONE, lambda cache_dir: backbone)
    folder = tmp_path / "images"
    folder.mkdir()
    truth = _demo_sample(folder)
    imagegen.write_files(folder, _odd_photos())
    files = sorted(folder.iterdir())
    project = create_project("parity", load_demo_images()[2])
    assert import_paths(project, [folder]).imported == len(files)
    assert run_inline("embed", project.id, embed_project).status == JobStatus.SUCCEEDED

    annotator = create_user("ann", "password-123")
    given: dict[str, int] = {}
    names = {row.id: row.original_name.rsplit("/", 1)[-1]
             for row in db.session.scalars(select(ImageRow))}
    for image in lease_next(project, annotator, n=len(files)):
        true_class = truth.get(names[image.id])
        if true_class and given.get(true_class, 0) < LABELS_PER_CLASS:
            submit_label(project, image.id, class_by_name(project, true_class), annotator)
            given[true_class] = given.get(true_class, 0) + 1
    job = run_inline("retrain", project.id, run_round)
    assert job.status == JobStatus.SUCCEEDED and "trained on 30 labels" in job.message

    model_path = tmp_path / "parity.keras"
    result = app.test_cli_runner().invoke(
        args=["export", "parity", "--format", "model", "--out", str(model_path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "Exported round 1 (trained on 30 labels, cross-validated accuracy "), result.output
    by_sha = {row.sha256: row for row in iter_rows(project, include_unlabelled=True)}
    app_rows = [by_sha[file_sha256(path)] for path in files]
    from_file = predict_with_readme_snippet(model_path, files, tmp_path / "fresh")

    differences = {}
    for index, (path, row) in enumerate(zip(files, app_rows, strict=True)):
        assert from_file.labels[index] == row.predicted, (
            f"{path.name}: the app predicts {row.predicted} ({row.confidence:.4f}), the "
            f"exported file {from_file.labels[index]}")
        differences[path.name] = abs(from_file.confidence_of(index, row.predicted)
                                     - row.confidence)
    worst = max(differences, key=differences.get)
    print(f"\n{len(files)} images, same class on all; confidence difference max "
          f"{differences[worst]:.1e} ({worst}), mean {np.mean(list(differences.values())):.1e}")
    assert differences[worst] <= CONFIDENCE_TOLERANCE, worst
