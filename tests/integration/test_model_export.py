"""Export format ``model``: one ``.keras`` file that plain Keras loads and that predicts as the app.

The exported file is loaded in a fresh Python process that imports only keras, numpy and
PIL, with safe mode on (the default), so a missing custom object or a Lambda layer fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from labeler.embeddings import DEFAULT_BACKBONE, prepare_image, register_backbone
from labeler.errors import LabelerError
from labeler.extensions import db
from labeler.importer import blob_store, import_paths
from labeler.jobs import run_inline
from labeler.model_export import export_model
from labeler.models import Image, JobStatus
from labeler.project_vectors import current_vectors, embed_project
from labeler.projects import class_by_name, create_project
from labeler.queue import lease_next, submit_label
from labeler.rounds import load_head
from labeler.training import run_round, set_training_options
from labeler.users import create_user
from tests import imagegen

DIGITS = {0: "zero", 1: "one", 7: "seven"}

# Runs in a fresh interpreter: only keras, numpy and PIL; safe mode is load_model's default.
LOAD_AND_PREDICT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import keras
    from PIL import Image

    model_path, arrays_path, raw_path, out_path = sys.argv[1:]
    start = time.perf_counter()
    model = keras.models.load_model(model_path)  # safe_mode=True: no Lambda, no custom objects
    loaded = time.perf_counter() - start
    prepared = np.load(arrays_path).astype("float32")
    out = model.predict(prepared, verbose=0)
    seconds = time.perf_counter() - start
    raw = np.asarray(Image.open(raw_path).convert("RGB"), dtype="float32")[None]
    raw_out = model.predict(raw, verbose=0)
    np.savez(out_path, probabilities=out["probabilities"],
             raw_probabilities=raw_out["probabilities"])
    assert not [m for m in sys.modules if m.split(".")[0] == "labeler"]  # plain Keras only
    print(json.dumps({
        "labels": [v.decode() for v in out["label"].tolist()],
        "raw_label": raw_out["label"][0].decode(),
        "vocabulary": model.get_layer("label").get_vocabulary(),
        "load_seconds": loaded,
        "load_and_predict_seconds": seconds,
    }))
""")


def _digits_folder(root, classes):
    """Real hand-written digits from scikit-learn as 64x64 PNG files, 12 per class."""
    return imagegen.digits_folder(root, classes, per_class=12)


def _trained_project(tmp_path, backbone, classes, head):
    """A project of real digits, embedded with the real backbone, labelled via the queue
    (4 per class) and trained with ``head``."""
    register_backbone(DEFAULT_BACKBONE, lambda cache_dir: backbone)
    project = create_project("digits", list(classes.values()))
    set_training_options(project, head=head)
    assert import_paths(project, [_digits_folder(tmp_path / "digits", classes)]).imported \
        == 12 * len(classes)
    assert run_inline("embed", project.id, embed_project).status == JobStatus.SUCCEEDED
    truth = {i.id: i.original_name.split("/")[-2] for i in db.session.scalars(select(Image))}
    annotator = create_user("ann", "password-123")
    given = dict.fromkeys(classes.values(), 0)
    for image in lease_next(project, annotator, n=len(truth)):
        if given[truth[image.id]] < 4:
            submit_label(project, image.id, class_by_name(project, truth[image.id]), annotator)
            given[truth[image.id]] += 1
    job = run_inline("retrain", project.id, run_round)
    assert job.status == JobStatus.SUCCEEDED, job.message
    return project


@pytest.mark.integration
@pytest.mark.parametrize(("classes", "head"), [
    (DIGITS, "logistic"),
    ({0: "zero", 1: "one"}, "logistic"),  # scikit-learn's one-row binary weights
    (DIGITS, "keras_dense"),
])
def test_exported_model_reproduces_the_app_in_a_fresh_python(
        app, backbone, tmp_path, classes, head):
    project = _trained_project(tmp_path, backbone, classes, head)
    images = db.session.scalars(select(Image).order_by(Image.id)).all()
    ids = np.array([i.id for i in images])
    store = blob_store()
    originals = [PILImage.open(store.image_path(i.sha256, i.format)) for i in images]
    prepared = np.stack([prepare_image(o, backbone.spec.input_size) for o in originals])
    np.save(tmp_path / "prepared.npy", prepared)
    # Another size and aspect ratio than the backbone's input, to go through Resizing.
    raw = originals[0].convert("RGB").resize((300, 200), PILImage.Resampling.BICUBIC)
    raw.save(tmp_path / "raw.png")

    head_ = load_head(project)
    expected = head_.predict_proba(current_vectors(project).vectors_for(ids))
    # The vectors the app stores are float16; the same head on float32 features is what the
    # exported model computes exactly.
    exact = head_.predict_proba(backbone.embed(prepared))
    by_id = {class_by_name(project, n).id: n for n in classes.values()}
    class_names = [by_id[int(c)] for c in head_.classes_]

    exported = export_model(project, tmp_path / "out" / "digits.keras")
    path = exported.path
    assert path == tmp_path / "out" / "digits.keras" and path.is_file()
    assert (exported.round_number, exported.n_labels) == (1, 4 * len(classes))
    assert str(exported).startswith(f"Exported round 1 (trained on {4 * len(classes)} labels, "
                                    "cross-validated accuracy ")
    assert [p.name for p in path.parent.iterdir()] == ["digits.keras"]  # no temp file left

    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, str(path), str(tmp_path / "prepared.npy"),
         str(tmp_path / "raw.png"), str(tmp_path / "out.npz")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    out = np.load(tmp_path / "out.npz")

    print(f"\n{head}/{len(classes)} classes: {path.stat().st_size / 2**20:.1f} MiB, load + "
          f"predict {len(ids)} images {report['load_and_predict_seconds']:.1f} s (load "
          f"{report['load_seconds']:.1f} s), max diff "
          f"vs app {np.abs(out['probabilities'] - expected).max():.2e}, vs float32 "
          f"{np.abs(out['probabilities'] - exact).max():.2e}")
    assert report["vocabulary"] == class_names
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-4)
    np.testing.assert_allclose(out["probabilities"], exact, atol=1e-5)
    assert report["labels"] == [class_names[k] for k in np.argmax(out["probabilities"], axis=1)]

    raw_proba = out["raw_probabilities"]
    assert raw_proba.shape == (1, len(classes))
    np.testing.assert_allclose(raw_proba.sum(), 1.0, atol=1e-5)
    assert report["raw_label"] == class_names[int(np.argmax(raw_proba))]
    # The file's own resize layer is the one the app's prepare_image runs: the same pixels
    # reach the backbone, so the file computes what the app's backbone and head compute.
    import keras

    model = keras.models.load_model(path)
    resized = np.asarray(model.get_layer("resize")(np.asarray(raw, np.float32)[None]))
    np.testing.assert_array_equal(resized[0], prepare_image(raw, backbone.spec.input_size))
    np.testing.assert_allclose(raw_proba, head_.predict_proba(backbone.embed(resized)), atol=1e-5)


def test_export_without_a_trained_round_says_to_train_first(app, tmp_path):
    """Fast: refused before TensorFlow or the backbone is touched."""
    project = create_project("fresh", ["cat", "dog"])

    with pytest.raises(LabelerError, match="Train a round first"):
        export_model(project, tmp_path / "fresh.keras")
    assert not (tmp_path / "fresh.keras").exists()


def test_export_needs_the_keras_suffix(app, tmp_path):
    project = create_project("fresh", ["cat", "dog"])

    with pytest.raises(LabelerError, match=r"must end in \.keras"):
        export_model(project, tmp_path / "fresh.h5")
