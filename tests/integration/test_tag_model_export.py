"""The exported tag model: real backbone, one sigmoid layer, thresholds, plain Keras reload.

Loaded in a fresh Python that imports only keras and numpy, safe mode on (the default), so
a Lambda layer or a custom object in the graph fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from labeler.embeddings import prepare_image
from labeler.embeddings.export_graph import DECISIONS, PROBABILITIES, TAGS, tag_model
from labeler.learning.tags import fit_tag_round

TAG_NAMES = ["zero", "stroke", "seven", "never"]

LOAD_AND_PREDICT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras

    model_path, images_path, out_path = sys.argv[1:]
    model = keras.models.load_model(model_path)  # safe_mode=True: built-in layers only
    out = model.predict(np.load(images_path), verbose=0)
    np.savez(out_path, probabilities=out["probabilities"], decisions=out["decisions"])
    assert not [m for m in sys.modules if m.split(".")[0] == "labeler"]  # plain Keras only
    print(json.dumps({"tags": [[t.decode() for t in row] for row in out["tags"].tolist()],
                      "vocabulary": model.get_layer("tags").get_vocabulary(),
                      "bias": model.get_layer("thresholds").get_weights()[1].tolist()}))
""")


def _digit_images(per_digit=8):
    """Real hand-written digits 0, 1 and 7 as 64x64 RGB arrays, and their tag rows."""
    digits = load_digits()
    images, rows = [], []
    for digit in (0, 1, 7):
        for pixels in digits.images[digits.target == digit][:per_digit]:
            gray = np.kron(pixels * 255 / 16, np.ones((8, 8)))  # 8x8 -> 64x64 blocks
            images.append(np.repeat(gray[:, :, None], 3, axis=2).round().astype(np.uint8))
            rows.append([digit == 0, digit in (1, 7), digit == 7, False])
    return np.stack(images), np.asarray(rows, dtype=np.uint8)


@pytest.mark.integration
def test_exported_tag_model_reproduces_the_heads_in_a_fresh_python(backbone, tmp_path):
    images, Y = _digit_images()
    size = backbone.spec.input_size
    embeddings = backbone.embed(np.stack([prepare_image(Image.fromarray(image), size)
                                          for image in images]))
    fitted = fit_tag_round(embeddings, Y, tags=TAG_NAMES, rng=0)
    head = fitted.head
    expected = head.predict_proba(embeddings)

    path = tmp_path / "tags.keras"
    tag_model(backbone, head, TAG_NAMES, "tags").save(path)
    np.save(tmp_path / "images.npy", images.astype(np.float32))
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, str(path), str(tmp_path / "images.npy"),
         str(tmp_path / "out.npz")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    out = np.load(tmp_path / "out.npz")

    assert out[PROBABILITIES].shape == (len(images), len(TAG_NAMES))
    np.testing.assert_allclose(out[PROBABILITIES], expected, atol=1e-4)
    np.testing.assert_allclose(out[PROBABILITIES][:, 3], expected[0, 3], atol=1e-6)  # constant
    # Decisions at the round's thresholds, away from the boundary where float32 may differ.
    clear = np.abs(expected - fitted.thresholds) > 1e-4
    np.testing.assert_array_equal(out[DECISIONS][clear], head.predict(embeddings)[clear])
    assert report["vocabulary"] == ["", *TAG_NAMES]
    np.testing.assert_allclose(report["bias"], -fitted.thresholds, atol=1e-7)
    for row, decisions in zip(report[TAGS], out[DECISIONS], strict=True):
        assert row == [name if on else "" for name, on in zip(TAG_NAMES, decisions, strict=True)]
    assert out[DECISIONS][:, :3].any(axis=0).all()  # each learnable tag is decided somewhere
