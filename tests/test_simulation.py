"""The label-efficiency simulation on synthetic blobs; one test with the real backbone."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import make_blobs

from labeler.embeddings import BackboneSpec
from labeler.embeddings.registry import known_identity, load_backbone
from labeler.errors import LabelerError
from labeler.learning import query
from labeler.learning.simulation import (
    CURVE_COLUMNS,
    CurveRow,
    cached_embeddings,
    label_schedule,
    load_arrays,
    load_folder_dataset,
    mean_curves,
    replay,
    simulate,
    split_pool,
    write_curve,
)
from tests.fakes import FAKE_BACKBONE, FakeBackbone
from tests.imagegen import gradient

NAMES = np.array(["ant", "bee", "cat", "dog", "eel", "fox"])


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Six well-separated classes in 32-d, labelled with strings."""
    X, y = make_blobs(n_samples=360, n_features=32, centers=6, cluster_std=2.0, random_state=3)
    return X.astype(np.float32), NAMES[y]


@pytest.fixture(scope="module")
def rows(blobs) -> list[CurveRow]:
    X, y = blobs
    return simulate(X, y, ["auto", "margin", "random"], [3, 6, 12, 24], seeds=[0, 1, 2])


def test_one_row_per_strategy_seed_and_budget(rows):
    keys = [(r.strategy, r.seed, r.n_labels) for r in rows]
    assert len(keys) == len(set(keys)) == 3 * 3 * 4
    assert {r.n_labels for r in rows} == {3, 6, 12, 24}
    assert all(0.0 <= r.accuracy <= 1.0 for r in rows)


def test_auto_beats_or_ties_random_at_small_budgets(rows):
    curves = mean_curves(rows)
    for n in (6, 12):
        assert np.mean(curves["auto"][n]) >= np.mean(curves["random"][n]) - 0.02, n
    # With one label per class, typical picks cover the six blobs; random picks do not.
    assert np.mean(curves["auto"][6]) > 0.95


def test_write_curve_csv_has_exactly_the_columns_and_a_png(rows, tmp_path):
    csv_path, png_path = write_curve(rows, tmp_path / "out")
    assert csv_path.read_text().splitlines()[0] == "strategy,seed,n_labels,accuracy"
    with open(csv_path, newline="") as f:
        read = list(csv.DictReader(f))
    assert tuple(read[0]) == CURVE_COLUMNS
    assert len(read) == len(rows)
    assert read[0]["strategy"] == rows[0].strategy and int(read[0]["n_labels"]) == 3
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png_path.stat().st_size > 10_000  # a real plot, not an empty canvas


def test_integer_labels_and_the_one_class_fallback(blobs):
    X, y = blobs
    y_int = np.searchsorted(NAMES, y)
    rows = simulate(X, y_int, ["random"], [1, 4], seeds=[5])
    # One label is one class: the head cannot be trained, so the recorded accuracy is
    # that of predicting the labelled class everywhere, ~1/6 for six balanced classes.
    assert rows[0].n_labels == 1 and rows[0].accuracy == pytest.approx(1 / 6, abs=0.02)


def test_runs_are_reproducible_and_strategies_independent(blobs):
    X, y = blobs
    both = simulate(X, y, ["margin", "random"], [4, 8], seeds=[1])
    alone = simulate(X, y, ["random"], [4, 8], seeds=[1])
    assert [r for r in both if r.strategy == "random"] == alone


def test_auto_follows_choose_strategy(blobs, monkeypatch):
    X, y = blobs
    used: list[tuple[int, str]] = []

    def spy(strategy, **kwargs):
        picks = query.rank_pool(strategy, **kwargs)
        used.append((int(kwargs["labelled_mask"].sum()), picks.strategy))
        return picks

    monkeypatch.setattr(replay, "rank_pool", spy)
    simulate(X, y, ["auto"], [6, 12, 18], seeds=[0], max_batch=6)
    # Cold start until two labels per class (12 of 6 classes), then margin with diversity.
    assert used == [(0, "typical"), (6, "typical"), (12, "margin_diverse")]


def test_model_strategies_start_at_random_and_batches_are_capped(blobs, monkeypatch):
    X, y = blobs
    asked: list[tuple[str, int]] = []

    def spy(strategy, **kwargs):
        asked.append((strategy, kwargs["n"]))
        return query.rank_pool(strategy, **kwargs)

    monkeypatch.setattr(replay, "rank_pool", spy)
    simulate(X, y, ["margin"], [1, 10], seeds=[0], max_batch=4)
    assert asked == [("random", 1), ("random", 4), ("margin", 4), ("margin", 1)]


def test_bad_arguments_are_refused(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="Unknown strategy"):
        simulate(X, y, ["psychic"], [5])
    with pytest.raises(ValueError, match="exceeds the pool"):
        simulate(X, y, ["random"], [10, 1000])
    with pytest.raises(ValueError, match="increasing"):
        simulate(X, y, ["random"], [10, 5])
    with pytest.raises(LabelerError, match="two or more images"):
        split_pool(np.array(["a", "a", "b"]), seed=0)


def test_label_schedule():
    assert label_schedule(50, 10) == [10, 20, 30, 40, 50]
    assert label_schedule(25, 10) == [10, 20, 25]
    with pytest.raises(ValueError):
        label_schedule(10, 0)


# --- files -------------------------------------------------------------------------------------


def save_png(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gradient(40, 30, seed=seed)).save(path)
    return path


def test_folder_loader_skips_non_images_and_reports_them(tmp_path):
    for i in range(2):
        save_png(tmp_path / "cats" / f"{i}.png", i)
        save_png(tmp_path / "dogs" / "nested" / f"{i}.png", 10 + i)
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    (tmp_path / "cats" / "fake.jpg").write_text("text with an image's name")
    whole = (tmp_path / "dogs" / "nested" / "0.png").read_bytes()
    (tmp_path / "dogs" / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "dogs" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "readme.md").write_text("top-level file")

    dataset = load_folder_dataset(tmp_path)

    assert [p.relative_to(tmp_path).as_posix() for p in dataset.paths] == [
        "cats/0.png", "cats/1.png", "dogs/nested/0.png", "dogs/nested/1.png"]  # fmt: skip
    assert dataset.labels.tolist() == ["cats", "cats", "dogs", "dogs"]
    skipped = {p.name: reason for p, reason in dataset.skipped}
    assert set(skipped) == {"notes.txt", "fake.jpg", "truncated.png", "readme.md"}
    assert "class subfolder" in skipped["readme.md"]


def test_folder_loader_needs_two_classes(tmp_path):
    save_png(tmp_path / "only" / "a.png", 0)
    with pytest.raises(LabelerError, match="at least two"):
        load_folder_dataset(tmp_path)
    with pytest.raises(LabelerError, match="not a folder"):
        load_folder_dataset(tmp_path / "missing")


def test_load_arrays(tmp_path):
    X, labels = tmp_path / "X.npy", tmp_path / "y.npy"
    np.save(X, np.ones((4, 3), dtype=np.float16))
    np.save(labels, np.array(["a", "b", "a", "b"]))
    X_loaded, y_loaded = load_arrays(X, labels)
    assert X_loaded.dtype == np.float32 and y_loaded.tolist() == ["a", "b", "a", "b"]

    np.save(labels, np.array([0, 1, 0]))
    with pytest.raises(LabelerError, match="has 4 rows but .* has 3 labels"):
        load_arrays(X, labels)
    np.save(labels, np.array([{"a": 1}] * 4, dtype=object), allow_pickle=True)
    with pytest.raises(LabelerError, match="could not be read"):
        load_arrays(X, labels)
    with pytest.raises(LabelerError, match="no embeddings file"):
        load_arrays(tmp_path / "missing.npy", labels)
    np.save(labels, np.array([0, 1, 0, 1]))
    np.save(X, np.ones(4))
    with pytest.raises(LabelerError, match="2-D"):
        load_arrays(X, labels)


# --- the embedding cache ---------------------------------------------------------------------


@pytest.fixture
def fake_backbone() -> FakeBackbone:
    """The backbone cached_embeddings loads (whose version is known only once loaded)."""
    return FakeBackbone()


def test_cache_embeds_each_content_once(tmp_path, fake_backbone):
    paths = [save_png(tmp_path / "img" / f"{i}.png", i) for i in range(5)]
    copy = tmp_path / "img" / "copy.png"
    copy.write_bytes(paths[0].read_bytes())
    seen: list[tuple[int, int]] = []

    first = cached_embeddings(
        [*paths, copy],
        tmp_path / "cache",
        lambda: fake_backbone,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert first.shape == (6, 48) and first.dtype == np.float32
    np.testing.assert_array_equal(first[0], first[5])
    assert fake_backbone.calls == [5] and seen[-1] == (5, 5)  # the copy was not embedded

    extra = save_png(tmp_path / "img" / "new.png", 99)
    again = cached_embeddings([extra, *paths], tmp_path / "cache", lambda: fake_backbone)
    np.testing.assert_array_equal(again[1:], first[:5])
    assert fake_backbone.calls == [5, 1]


def test_cache_is_keyed_by_backbone_version(tmp_path, fake_backbone):
    paths = [save_png(tmp_path / f"{i}.png", i) for i in range(2)]
    cached_embeddings(paths, tmp_path / "cache", lambda: fake_backbone)
    fake_backbone.spec = BackboneSpec(FAKE_BACKBONE, "2", 16, 48)  # new weights, say
    cached_embeddings(paths, tmp_path / "cache", lambda: fake_backbone)
    assert fake_backbone.calls == [2, 2]


def test_unreadable_files_are_listed_and_the_rest_cached(tmp_path, fake_backbone):
    good = save_png(tmp_path / "good.png", 0)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"no image")
    with pytest.raises(LabelerError, match=r"1 image\(s\) could not be read .*bad\.png"):
        cached_embeddings([good, bad], tmp_path / "cache", lambda: fake_backbone)
    assert cached_embeddings([good], tmp_path / "cache", lambda: fake_backbone).shape == (1, 48)
    assert fake_backbone.calls == [2]


@pytest.mark.integration
def test_real_backbone_embeds_once_then_serves_the_cache(tmp_path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    folder = tmp_path / "data"
    for i in range(12):
        save_png(folder / ("red", "green", "blue")[i % 3] / f"{i}.png", i)
    dataset = load_folder_dataset(folder)
    cache = tmp_path / "cache"

    identity = known_identity("efficientnet-lite0")
    first = cached_embeddings(dataset.paths, cache,
                              lambda: load_backbone("efficientnet-lite0", cache),
                              identity=identity, batch_size=8)
    assert first.shape == (12, 1280) and np.isfinite(first).all()
    store = next((cache / "embeddings").glob("*.npz"))
    written = store.stat().st_mtime_ns

    def no_backbone():
        raise AssertionError("the second run must not load the backbone")

    second = cached_embeddings(dataset.paths, cache, no_backbone, identity=identity)
    np.testing.assert_array_equal(second, first)
    assert store.stat().st_mtime_ns == written


# --- heads, policies and calibration -------------------------------------------------------------


def test_a_semi_supervised_head_is_fitted_on_the_whole_pool(blobs, monkeypatch):
    from labeler.learning.pseudo_label import UNLABELLED, PseudoLabelHead

    X, y = blobs
    seen: list[tuple[int, int]] = []
    fit = PseudoLabelHead.fit

    def spy(self, X_fit, y_fit, held_out=None):
        seen.append((len(X_fit), int(np.count_nonzero(np.asarray(y_fit) != UNLABELLED))))
        return fit(self, X_fit, y_fit, held_out)

    monkeypatch.setattr(PseudoLabelHead, "fit", spy)
    rows = simulate(X, y, ["random"], [6, 12], seeds=[0], head="pseudo_label")
    pool = len(split_pool(y, 0)[0])
    assert seen == [(pool, 6), (pool, 12)]  # every image, with the labels so far marked
    assert all(0.0 <= r.accuracy <= 1.0 for r in rows)


def test_the_auto_policy_reaches_the_rounds(blobs, monkeypatch):
    X, y = blobs
    used: list[str] = []

    def spy(strategy, **kwargs):
        picks = query.rank_pool(strategy, **kwargs)
        used.append(picks.strategy)
        return picks

    monkeypatch.setattr(replay, "rank_pool", spy)
    policy = query.AutoPolicy(cold_start="maxherding", labels_per_class=1, then="margin")
    simulate(X, y, ["auto"], [6, 12], seeds=[0], max_batch=6, policy=policy)
    assert used == ["maxherding", "margin"]


def test_calibration_is_measured_only_when_asked(blobs):
    X, y = blobs
    plain = simulate(X, y, ["random"], [12, 24], seeds=[0])
    curves = []
    measured = simulate(X, y, ["random"], [12, 24], seeds=[0], calibrate=True,
                        on_reliability=lambda row, *both: curves.append((row, *both)))
    assert all(np.isnan(r.ece) for r in plain)
    assert [row for row, _, _ in curves] == measured
    assert all(before.ece == row.ece and after.ece == row.ece_calibrated
               and before.counts.sum() == len(y) // 3 for row, before, after in curves)
    assert [r.accuracy for r in plain] == [r.accuracy for r in measured]
    assert all(0.0 <= r.ece <= 1.0 and 0.0 <= r.ece_calibrated <= 1.0 for r in measured)
    assert all(r.temperature > 0 for r in measured)


def test_the_temperature_is_the_one_a_round_fits(blobs, monkeypatch):
    X, y = blobs
    temperatures: list[float] = []
    fit_round = replay.fit_round

    def spy(*args, **kwargs):
        fitted = fit_round(*args, **kwargs)
        temperatures.append(fitted.temperature)
        return fitted

    monkeypatch.setattr(replay, "fit_round", spy)
    rows = simulate(X, y, ["random"], [12, 24], seeds=[0], calibrate=True)
    assert [r.temperature for r in rows] == temperatures


def test_unknown_head_is_refused(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="Unknown head"):
        simulate(X, y, ["random"], [5], head="oracle")
