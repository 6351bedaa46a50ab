"""The real backbone through the real pipeline: import -> embed -> stored vectors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image, ImageOps

from labeler.embeddings import DEFAULT_BACKBONE, prepare_image, register_backbone
from labeler.extensions import db
from labeler.models import Image as ImageRow
from labeler.project_vectors import current_vectors, embedding_counts
from labeler.vectors import VectorStore
from tests import imagegen
from tests.dbutil import database_env

pytestmark = pytest.mark.integration


@pytest.fixture
def real_backbone(backbone):
    """The session's backbone, also used by the app's embed job (loaded once)."""
    register_backbone(DEFAULT_BACKBONE, lambda cache_dir: backbone)
    return backbone


def test_import_then_embed_stores_the_backbones_vector_for_each_image(
        app, runner, real_backbone, photos, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, photo in photos.items():
        photo.save(folder / f"{name}.jpg", quality=92)
    ImageOps.mirror(photos["china"]).save(folder / "china_flipped.jpg", quality=92)
    rotated = imagegen.exif_rotated_jpeg(300, 200)
    (folder / "rotated.jpg").write_bytes(rotated)

    assert runner.invoke(args=["project", "create", "p"]).exit_code == 0
    assert runner.invoke(args=["import", "p", str(folder)]).exit_code == 0
    result = runner.invoke(args=["embed", "p", "--batch-size", "4"])

    assert result.exit_code == 0, result.output
    assert "Embedded 8 images with efficientnet-lite0 (version 1-p2)" in result.output
    from labeler.projects import get_project

    project = get_project("p")
    assert embedding_counts(project) == (8, 8)
    store = current_vectors(project)
    assert store.space.dim == 1280 and store.matrix().dtype == np.float16

    by_name = {os.path.basename(r.original_name): r.id for r in db.session.query(ImageRow)}
    expected = real_backbone.embed(np.stack([prepare_image(photos["coffee"], 224)]))[0]
    stored = store.vectors_for([by_name["coffee.jpg"]])[0]
    # Same pixels as the direct call (JPEG re-encoding aside): near-identical direction.
    cosine = stored @ expected / np.linalg.norm(stored) / np.linalg.norm(expected)
    assert cosine > 0.97

    # The pipeline applies EXIF orientation: the rotated file embeds like its upright view.
    with Image.open(folder / "rotated.jpg") as image:
        upright = ImageOps.exif_transpose(image).copy()
    upright_vector = real_backbone.embed(np.stack([prepare_image(upright, 224)]))[0]
    rotated_vector = store.vectors_for([by_name["rotated.jpg"]])[0]
    assert rotated_vector @ upright_vector / (
        np.linalg.norm(rotated_vector) * np.linalg.norm(upright_vector)) > 0.99

    # A flipped copy is nearer its original than any other photo.
    vectors = store.vectors_for([by_name[n] for n in sorted(by_name)])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    names = sorted(by_name)
    similarity = unit @ unit[names.index("china_flipped.jpg")]
    similarity[names.index("china_flipped.jpg")] = -1
    assert names[int(np.argmax(similarity))] == "china.jpg"


def test_classify_prints_imagenet_classes_offline(runner, real_backbone, photos, tmp_path):
    photos["china"].save(tmp_path / "china.jpg")
    photos["flower"].save(tmp_path / "flower.jpg")
    (tmp_path / "notes.jpg").write_text("not a picture")

    result = runner.invoke(args=["classify", str(tmp_path / "china.jpg"),
                                 str(tmp_path / "flower.jpg"), str(tmp_path / "notes.jpg")])

    assert result.exit_code == 0, result.output
    china, flower, notes = result.output.split(str(tmp_path))[1:]
    assert "palace" in china or "monastery" in china
    assert "daisy" in flower
    assert "cannot read" in notes


def tiny_keras_backbone(path):
    """A small user .keras model, so a subprocess can embed quickly with real TF."""
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax")(x)
    keras.Model(inputs, outputs).save(path)
    return path


def test_kill_9_mid_embedding_then_rerun_finishes_with_nothing_half_written(app, tmp_path):
    from labeler.importer import import_paths
    from labeler.project_vectors import set_project_backbone
    from labeler.projects import create_project

    model_path = tiny_keras_backbone(tmp_path / "tiny.keras")
    project = create_project("crash")
    set_project_backbone(project, str(model_path))
    folder = tmp_path / "many"
    imagegen.write_files(folder, {
        f"{i:04d}.png": imagegen.encode(Image.fromarray(imagegen.gradient(96, 64, seed=i)), "PNG")
        for i in range(600)})
    assert import_paths(project, [folder]).imported == 600

    env = {**os.environ, "LABELER_HOME": str(app.config["HOME"]), "TF_CPP_MIN_LOG_LEVEL": "3",
           **database_env(app.config["HOME"])}
    command = [sys.executable, "-m", "labeler", "embed", "crash", "--batch-size", "4"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    ids_file = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        found = list((app.config["HOME"] / "vectors" / str(project.id)).glob("*.ids"))
        if found and found[0].stat().st_size >= 8 * 8:
            ids_file = found[0]
            break
        time.sleep(0.005)
    assert ids_file is not None and process.poll() is None, "embedding ended before the kill"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    db.session.expire_all()
    store = current_vectors(project)
    partial = len(store)
    assert 0 < partial < 600
    assert store.matrix().shape == (partial, store.space.dim)  # only whole rows are visible
    already = len(np.unique(store.image_ids()))

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"Embedded {600 - already} images" in rerun.stdout  # only the missing ones

    final = VectorStore(app.config["HOME"], project.id, store.space)
    ids = final.image_ids()
    assert len(ids) == 600 and len(np.unique(ids)) == 600
    assert final.vectors_path.stat().st_size == 600 * store.space.dim * 2
