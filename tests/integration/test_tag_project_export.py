"""Export format ``model`` of a multi-label project: the app's trained tag heads as one
``.keras`` file that plain Keras loads in a fresh Python and that predicts as the app.

Real digits, the real EfficientNet-Lite0 backbone, tags given through the queue, a real
round; the file is loaded with safe mode on in a process that imports only keras/numpy.
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
from labeler.extensions import db
from labeler.importer import blob_store, import_paths
from labeler.jobs import run_inline
from labeler.model_export import export_model
from labeler.models import Image, JobStatus
from labeler.project_vectors import current_vectors, embed_project
from labeler.projects import class_by_name, create_project
from labeler.queue import submit_tags
from labeler.rounds import load_head
from labeler.training import run_round
from labeler.users import create_user
from tests import imagegen

DIGITS = {0: "zero", 1: "one", 7: "seven"}
# Tags of each digit's images: "round" for 0, "stroke" for 1 and 7, "bar" for 7.
TAGS_OF = {"zero": ["round"], "one": ["stroke"], "seven": ["stroke", "bar"]}

LOAD_AND_PREDICT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras

    model_path, arrays_path, out_path = sys.argv[1:]
    model = keras.models.load_model(model_path)  # safe_mode=True: built-in layers only
    out = model.predict(np.load(arrays_path).astype("float32"), verbose=0)
    np.savez(out_path, probabilities=out["probabilities"])
    assert not [m for m in sys.modules if m.split(".")[0] == "labeler"]  # plain Keras only
    print(json.dumps({"tags": [[t.decode() for t in row] for row in out["tags"].tolist()],
                      "vocabulary": model.get_layer("tags").get_vocabulary()}))
""")


@pytest.mark.integration
def test_a_multi_label_projects_model_reproduces_the_app_in_a_fresh_python(
        app, backbone, tmp_path):
    register_backbone(DEFAULT_BACKBONE, lambda cache_dir: backbone)
    project = create_project("digit tags", ["round", "stroke", "bar"], multi_label=True)
    imported = import_paths(project, [imagegen.digits_folder(tmp_path / "digits", DIGITS, 8)])
    assert imported.imported == 24
    assert run_inline("embed", project.id, embed_project).status == JobStatus.SUCCEEDED
    annotator = create_user("ann", "password-123")
    images = db.session.scalars(select(Image).order_by(Image.id)).all()
    for image in images[::2]:  # half of each digit's images, all three digits
        digit = image.original_name.split("/")[-2]
        submit_tags(project, image.id, [class_by_name(project, t) for t in TAGS_OF[digit]],
                    annotator)
    job = run_inline("retrain", project.id, run_round)
    assert job.status == JobStatus.SUCCEEDED, job.message

    head = load_head(project)
    ids = np.array([i.id for i in images])
    expected = head.predict_proba(current_vectors(project).vectors_for(ids))
    store = blob_store()
    prepared = np.stack([prepare_image(PILImage.open(store.image_path(i.sha256, i.format)),
                                       backbone.spec.input_size) for i in images])
    np.save(tmp_path / "prepared.npy", prepared)

    exported = export_model(project, tmp_path / "tags.keras")
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, str(exported.path),
         str(tmp_path / "prepared.npy"), str(tmp_path / "out.npz")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    out = np.load(tmp_path / "out.npz")

    assert report["vocabulary"] == ["", "round", "stroke", "bar"]
    # The app stores float16 vectors; the file computes on float32 features.
    np.testing.assert_allclose(out["probabilities"], expected, atol=2e-3)
    thresholds = head.thresholds_
    clear = np.abs(expected - thresholds) > 5e-3  # away from a threshold, decisions agree
    decided = [[name if p >= t else "" for name, p, t in zip(
        ["round", "stroke", "bar"], row, thresholds, strict=True)] for row in expected]
    assert all(a == b for row_a, row_b, mask in zip(report["tags"], decided, clear, strict=True)
               for a, b, m in zip(row_a, row_b, mask, strict=True) if m)
