"""`labeler simulate` on precomputed arrays (the folder path is covered in test_simulation)."""

from __future__ import annotations

import csv

import numpy as np
from sklearn.datasets import make_blobs


def test_simulate_cli_writes_curve_csv_and_png(runner, tmp_path):
    X, y = make_blobs(n_samples=240, centers=4, n_features=16, random_state=0)
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    np.save(tmp_path / "y.npy", np.array([f"class{v}" for v in y]))

    result = runner.invoke(args=[
        "simulate", "--embeddings", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"),
        "--strategies", "auto,random", "--budget", "40", "--step", "10", "--seeds", "2",
        "--out", str(tmp_path / "out")])

    assert result.exit_code == 0, result.output
    with open(tmp_path / "out" / "curve.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["strategy", "seed", "n_labels", "accuracy"]
    assert len(rows) == 2 * 2 * 4  # strategies x seeds x checkpoints
    assert (tmp_path / "out" / "curve.png").stat().st_size > 1000
    assert "auto" in result.output and "random" in result.output


def test_simulate_cli_needs_data(runner, tmp_path):
    result = runner.invoke(args=["simulate", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "Give a FOLDER" in result.output


def test_simulate_cli_runs_a_semi_supervised_head_and_measures_calibration(runner, tmp_path):
    X, y = make_blobs(n_samples=240, centers=4, n_features=16, random_state=0)
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    np.save(tmp_path / "y.npy", y)

    result = runner.invoke(args=[
        "simulate", "--embeddings", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"),
        "--strategies", "maxherding,random", "--budget", "20", "--step", "10", "--seeds", "1",
        "--head", "pseudo_label", "--calibrate", "--out", str(tmp_path / "out")])

    assert result.exit_code == 0, result.output
    with open(tmp_path / "out" / "curve.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["strategy", "seed", "n_labels", "accuracy", "ece",
                             "ece_calibrated", "temperature"]
    assert {row["strategy"] for row in rows} == {"maxherding", "random"}
    assert all(0.0 <= float(row["ece"]) <= 1.0 for row in rows)


def test_simulate_cli_refuses_an_unknown_head(runner, tmp_path):
    result = runner.invoke(args=["simulate", "--head", "oracle", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "oracle" in result.output


def _tag_blobs(n=150, seed=0):
    """Embeddings of three blobs; tag t is on for blobs that contain it (blob 2 has both)."""
    X, blob = make_blobs(n_samples=n, centers=3, n_features=8, random_state=seed)
    Y = np.stack([blob != 1, blob != 0], axis=1).astype(np.uint8)
    return X.astype(np.float32), Y


def test_simulate_cli_replays_multi_label_npy_with_micro_f1_and_map(runner, tmp_path):
    X, Y = _tag_blobs()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)

    result = runner.invoke(args=[
        "simulate", "--embeddings", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "Y.npy"),
        "--budget", "30", "--step", "10", "--seeds", "2", "--out", str(tmp_path / "out")])

    assert result.exit_code == 0, result.output
    with open(tmp_path / "out" / "curve.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["strategy", "seed", "n_labels", "micro_f1", "map", "macro_f1"]
    assert {row["strategy"] for row in rows} == {"auto", "tag_threshold_diverse",
                                                 "tag_entropy_diverse", "random"}
    assert len(rows) == 4 * 2 * 3  # strategies x seeds x checkpoints
    at_30 = [float(row["map"]) for row in rows if row["n_labels"] == "30"]
    assert min(at_30) > 0.9  # separable blobs: every strategy learns the tags
    assert "micro-F1" in result.output and "mAP" in result.output
    assert (tmp_path / "out" / "curve.png").stat().st_size > 1000


def test_simulate_cli_reads_a_csv_of_files_and_tags(runner, tmp_path):
    X, Y = _tag_blobs(n=90)
    np.save(tmp_path / "X.npy", X)
    with open(tmp_path / "tags.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "tags"])
        for i, row in enumerate(Y):
            tags = [t for t, on in zip(["sea", "sky"], row, strict=True) if on]
            writer.writerow([f"{i}.png", ";".join(tags)])

    result = runner.invoke(args=[
        "simulate", "--embeddings", str(tmp_path / "X.npy"), "--labels",
        str(tmp_path / "tags.csv"), "--strategies", "tag_entropy,random", "--budget", "20",
        "--step", "10", "--seeds", "1", "--out", str(tmp_path / "out")])

    assert result.exit_code == 0, result.output
    assert "2 tags" in result.output
    with open(tmp_path / "out" / "curve.csv") as handle:
        assert {row["strategy"] for row in csv.DictReader(handle)} == {"tag_entropy", "random"}


def test_simulate_cli_refuses_single_label_options_and_bad_tags(runner, tmp_path):
    X, Y = _tag_blobs(n=30)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    np.save(tmp_path / "bad.npy", Y * 3)
    common = ["simulate", "--embeddings", str(tmp_path / "X.npy"), "--out", str(tmp_path / "o")]

    calibrate = runner.invoke(args=[*common, "--labels", str(tmp_path / "Y.npy"), "--calibrate"])
    bad = runner.invoke(args=[*common, "--labels", str(tmp_path / "bad.npy")])
    strategy = runner.invoke(args=[*common, "--labels", str(tmp_path / "Y.npy"),
                                   "--strategies", "margin", "--budget", "10"])

    assert calibrate.exit_code == 2 and "single-label" in calibrate.output
    assert bad.exit_code == 1 and "other than 0 and 1" in bad.output
    assert strategy.exit_code == 1 and "Unknown tag strategy 'margin'" in strategy.output
