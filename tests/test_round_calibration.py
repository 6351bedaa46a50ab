"""Rounds fit the pseudo-label head, cache its graph, and auto-tag with calibrated confidences."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from labeler import pool_derived, training
from labeler.extensions import db
from labeler.importer import import_paths
from labeler.jobs import run_inline
from labeler.learning.calibration import apply_temperature
from labeler.learning.pseudo_label import PseudoLabelHead
from labeler.models import Image
from labeler.project_vectors import current_vectors, embed_project
from labeler.rounds import latest_round, load_head
from labeler.training import run_round, set_training_options
from tests import imagegen
from tests.builders import colour_image, embedded_colour_project, label_from_queue


@pytest.fixture
def project(app, tmp_path):
    return embedded_colour_project(tmp_path / "in", per_colour=20, seed_step=7)


def _vectors_by_id(project) -> dict[int, np.ndarray]:
    store = current_vectors(project)
    return dict(zip(store.image_ids().tolist(), np.asarray(store.matrix(), np.float32),
                    strict=True))


def test_a_round_fits_the_pseudo_label_head_on_the_whole_pool(project, alice, monkeypatch):
    seen = []
    fit = PseudoLabelHead.fit

    def spy(self, X, y, held_out=None):
        seen.append((len(X), int(np.count_nonzero(np.asarray(y) >= 0)), held_out is None))
        return fit(self, X, y, held_out)

    monkeypatch.setattr(PseudoLabelHead, "fit", spy)
    label_from_queue(project, alice)
    run_inline("retrain", project.id, run_round)

    round_ = latest_round(project)
    assert round_.metrics["head"] == "pseudo_label"
    # The head on all 12 labels, then one per fold with that fold's labels hidden: always
    # the whole pool of 60 images.
    assert seen[0] == (60, 12, True)
    assert len(seen) > 1 and all(n == 60 and n_labels < 12 and not whole
                                 for n, n_labels, whole in seen[1:])


def test_auto_tags_show_the_calibrated_confidence_and_the_saved_head_gives_it(
        project, alice, monkeypatch):
    label_from_queue(project, alice)
    raw_heads = []
    fit_round = training.fit_round

    def keep_raw(*args, **kwargs):
        fitted = fit_round(*args, **kwargs)
        raw_heads.append(fitted.head)
        return fitted

    monkeypatch.setattr(training, "fit_round", keep_raw)
    run_inline("retrain", project.id, run_round)

    calibration = latest_round(project).metrics["calibration"]
    temperature = calibration["temperature"]
    assert temperature != pytest.approx(1.0, abs=1e-3)  # otherwise this test shows nothing
    vectors = _vectors_by_id(project)
    images = db.session.scalars(select(Image).where(Image.label_class_id.is_(None))).all()
    X = np.stack([vectors[i.id] for i in images])
    raw = raw_heads[0].predict_proba(X)
    shown = np.array([i.confidence for i in images])
    np.testing.assert_allclose(shown, apply_temperature(raw, temperature).max(axis=1),
                               rtol=1e-5)
    assert not np.allclose(shown, raw.max(axis=1), rtol=1e-3)
    # The saved head (explanations, the exported model) gives the same confidences.
    np.testing.assert_allclose(load_head(project).predict_proba(X).max(axis=1), shown,
                               rtol=1e-4)


def test_the_round_records_its_out_of_fold_calibration_and_precision_thresholds(
        project, alice):
    label_from_queue(project, alice)
    run_inline("retrain", project.id, run_round)

    metrics = latest_round(project).metrics
    calibration = metrics["calibration"]
    assert calibration["n"] == metrics["n"] == 12
    assert sum(b["count"] for b in calibration["bins"]) == 12
    assert sum(b["count"] for b in calibration["bins_raw"]) == 12
    assert 0.0 <= calibration["ece"] <= 1.0 and 0.0 <= calibration["ece_raw"] <= 1.0
    class_ids = {str(c.id) for c in project.classes}
    assert set(metrics["precision_thresholds"]["0.95"]) == class_ids


def test_the_pool_graph_is_built_once_per_vector_version(project, alice, monkeypatch,
                                                          tmp_path):
    built = []
    real = pool_derived.build_pool_graph

    def counting(*args, **kwargs):
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pool_derived, "build_pool_graph", counting)
    label_from_queue(project, alice)
    run_inline("retrain", project.id, run_round)
    first = latest_round(project).metrics["accuracy"]
    run_inline("retrain", project.id, run_round)
    assert len(built) == 1  # same vectors: the graph file beside them is reused
    assert latest_round(project).metrics["accuracy"] == first

    imagegen.write_files(tmp_path / "more", {"extra.png": colour_image((220, 30, 30), 99)})
    import_paths(project, [tmp_path / "more"])
    run_inline("embed", project.id, embed_project)
    run_inline("retrain", project.id, run_round)
    assert len(built) == 2  # new vectors: a new graph


def test_a_damaged_graph_file_is_built_again(project, alice):
    label_from_queue(project, alice)
    run_inline("retrain", project.id, run_round)
    store = current_vectors(project)
    graph_file = store.vectors_path.parent / f"{store.vectors_path.stem}.graph.npz"
    assert graph_file.is_file()
    graph_file.write_bytes(b"not an npz")
    job = run_inline("retrain", project.id, run_round)
    assert job.status == "succeeded"
    with np.load(graph_file, allow_pickle=False) as saved:
        assert "neighbours" in saved.files


def test_a_coverage_cold_start_can_be_chosen_for_the_queue(project):
    set_training_options(project, strategy="maxherding")
    run_inline("retrain", project.id, run_round)
    assert latest_round(project, succeeded_only=False).strategy == "maxherding"


def test_the_logistic_head_can_still_be_chosen(project, alice):
    set_training_options(project, head="logistic")
    label_from_queue(project, alice)
    run_inline("retrain", project.id, run_round)
    assert latest_round(project).metrics["head"] == "logistic"
