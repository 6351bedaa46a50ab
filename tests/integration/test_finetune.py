"""`labeler finetune` end to end with the real backbone, on a few of the demo's images."""

from __future__ import annotations

import functools
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeler.embeddings import DEFAULT_BACKBONE, load_backbone, register_backbone
from labeler.embeddings.finetune import FineTuneSettings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

# T-shirts, pullovers and shirts: demo classes hard enough that an epoch lowers the
# held-out loss (on easy ones the frozen head is already near-perfect and nothing changes).
CLASSES = (0, 2, 6)
LABELLED, UNLABELLED = 10, 4  # per class


@pytest.fixture
def real_backbone(backbone):
    register_backbone(DEFAULT_BACKBONE, lambda cache_dir: backbone)
    return backbone


def demo_folders(root: Path) -> tuple[Path, Path]:
    """A folder per class of labelled demo images, and a folder of unlabelled ones."""
    from labeler.demo import load_demo_images

    pixels, labels, names = load_demo_images()
    labelled, unlabelled = root / "labelled", root / "unlabelled"
    for value in CLASSES:
        indices = np.flatnonzero(labels == value)[:LABELLED + UNLABELLED]
        for n, index in enumerate(indices):
            folder = labelled / names[value].replace("/", "-") if n < LABELLED else unlabelled
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels[index]).convert("RGB").save(folder / f"{index:05d}.png")
    return labelled, unlabelled


def find_layer(model, name: str):
    """The layer called ``name`` anywhere inside ``model`` (nested models included)."""
    for layer in model.layers:
        if layer.name == name:
            return layer
        if hasattr(layer, "layers") and (found := find_layer(layer, name)) is not None:
            return found
    return None


def test_finetune_adopts_re_embeds_switches_and_the_export_carries_it(
        runner, real_backbone, tmp_path, monkeypatch):
    import keras

    from labeler.project_vectors import current_space, current_vectors, embedding_counts
    from labeler.projects import get_project
    from labeler.rounds import latest_round

    labelled, unlabelled = demo_folders(tmp_path)
    assert runner.invoke(args=["project", "create", "p"]).exit_code == 0
    assert runner.invoke(args=["import", "p", str(labelled), "--labels-from-folders"]
                         ).exit_code == 0
    assert runner.invoke(args=["import", "p", str(unlabelled)]).exit_code == 0
    assert runner.invoke(args=["embed", "p"]).exit_code == 0
    frozen_vectors = current_vectors(get_project("p")).matrix().astype(np.float32)
    # Six held-out labels decide by chance; lower the bar so that this test runs the switch
    # (tests/test_finetuning.py covers refusal).
    monkeypatch.setattr("labeler.finetuning.FineTuneSettings",
                        functools.partial(FineTuneSettings, min_gain=-1.0, views=2))

    result = runner.invoke(args=["finetune", "p", "--epochs", "2"])

    assert result.exit_code == 0, result.output
    assert re.search(r"on 6 held-out labels: \d+\.\d% against \d+\.\d%\.", result.output)
    assert "Re-embedded 42 images with the fine-tuned backbone and switched to it" in (
        result.output)
    project = get_project("p")
    record = project.settings["finetune"]
    assert record["adopted"] and record["split"] == [18, 6, 6] and record["best_epoch"] >= 1
    assert 0 <= record["frozen_accuracy"] <= 1 and 0 <= record["finetuned_accuracy"] <= 1
    saved = Path(project.settings["backbone"])
    assert saved.parent.name == "finetuned" and zipfile.is_zipfile(saved)  # Keras' format
    assert current_space(project).backbone == str(saved) and embedding_counts(project) == (
        42, 42)
    assert latest_round(project).metrics["trained"]

    # The new vectors are the saved model's features, not the frozen backbone's.
    tuned = load_backbone(str(saved), tmp_path)
    store = current_vectors(project)
    files = [str(p) for p in sorted(unlabelled.glob("*.png"))[:2]]
    direct = np.concatenate([b.vectors for b in tuned.embed_files(files)])
    stored = store.matrix().astype(np.float32)
    nearest = [int(np.argmax(stored @ v)) for v in direct]
    assert np.allclose(stored[nearest], direct, rtol=2e-3, atol=2e-3)
    assert not np.allclose(stored, frozen_vectors, rtol=2e-3, atol=2e-3)

    out = tmp_path / "model.keras"
    exported = runner.invoke(args=["export", "p", "--format", "model", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    model = keras.saving.load_model(out, compile=False)
    trained_layer = "block15_expand_conv"  # in the top two stages of Lite0
    in_export = find_layer(model, trained_layer).get_weights()[0]
    assert np.array_equal(in_export, find_layer(tuned.feature_model, trained_layer)
                          .get_weights()[0])
    assert not np.array_equal(in_export, real_backbone.feature_model.get_layer(trained_layer)
                              .get_weights()[0])
