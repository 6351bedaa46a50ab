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
