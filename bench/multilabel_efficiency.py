"""The multi-label case of ``bench/label_efficiency.py``: tag strategies on Fashion-MNIST mosaics.

Replays active learning with :func:`labeler.learning.simulation.simulate_tags` (the engine of
``labeler simulate`` on tag data) on Lite0 embeddings of 2×2 mosaics of Fashion-MNIST items
tagged with the classes they contain (:mod:`mosaics`), over several seeds, with a random
two-thirds pool and one-third held-out split, retraining every 20 labels as the app does.
Each arm is a tag strategy of :mod:`labeler.learning.tag_query`; ``random`` is the same-run
baseline. Goal (issue 17): ``auto`` beats ``random`` on held-out mAP at every budget.

Each (arm, seed) result is kept under ``--cache``/levers/ so an interrupted run resumes.
Called by ``bench/label_efficiency.py --multi-label``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from labeler.learning.simulation import TagCurveRow, simulate_tags, write_tag_curve

BUDGETS = [10, 20, 50, 100, 200, 400]
ARMS = ["random", "tag_threshold_diverse", "tag_entropy_diverse", "auto"]
GOAL_ARM, BASELINE = "auto", "random"


def run_arm(arm: str, X: np.ndarray, Y: np.ndarray, seed: int, max_batch: int,
            store: Path) -> list[TagCurveRow]:
    """The arm's rows for one seed, from ``store`` if measured before."""
    path = store / f"{arm}-seed{seed}.json"
    if path.exists():
        return [TagCurveRow(*row) for row in json.loads(path.read_text())]
    rows = simulate_tags(X, Y, [arm], BUDGETS, seeds=[seed], max_batch=max_batch)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([list(row) for row in rows]))
    return rows


def mean_at(rows: list[TagCurveRow], field: str) -> dict[int, float]:
    """Mean of ``field`` over seeds at each budget."""
    return {n: float(np.mean([getattr(r, field) for r in rows if r.n_labels == n]))
            for n in BUDGETS}


def report(curves: dict[str, list[TagCurveRow]]) -> bool:
    """Print the mAP and micro-F1 tables and the goal; True when the goal is met."""
    width = max(len(arm) for arm in curves) + 2
    for field, title in (("map", "held-out mAP"), ("micro_f1", "held-out micro-F1"),
                         ("macro_f1", "held-out macro-F1")):
        print(f"\n{title} (mean over seeds)")
        print(f"{'arm':<{width}}" + "".join(f"{n:>8}" for n in BUDGETS))
        for arm, rows in curves.items():
            curve = mean_at(rows, field)
            print(f"{arm:<{width}}" + "".join(f"{curve[n]:>8.3f}" for n in BUDGETS))
    if GOAL_ARM not in curves or BASELINE not in curves:
        return False
    goal, base = mean_at(curves[GOAL_ARM], "map"), mean_at(curves[BASELINE], "map")
    behind = [n for n in BUDGETS if goal[n] <= base[n]]
    print(f"\ngoal: {GOAL_ARM} beats {BASELINE} on mAP at every budget: "
          + ("MET" if not behind else f"MISSED at {behind}"))
    return not behind


def main(X: np.ndarray, Y: np.ndarray, key: str, seeds: list[int], arms: list[str],
         max_batch: int, cache: Path) -> int:
    """Run the arms on ``(X, Y)`` and report; the exit status is 0 when the goal is met."""
    print(f"{key}: {len(X)} images × {X.shape[1]} dims, {Y.shape[1]} tags, "
          f"{Y.sum(axis=1).mean():.2f} tags per image")
    curves: dict[str, list[TagCurveRow]] = {}
    for arm in arms:
        started = time.perf_counter()
        curves[arm] = [row for seed in seeds
                       for row in run_arm(arm, X, Y, seed, max_batch, cache / "levers" / key)]
        print(f"  {arm}: {time.perf_counter() - started:.0f} s", flush=True)
    csv_path, png_path = write_tag_curve([r for rows in curves.values() for r in rows],
                                         cache / "label-efficiency" / key)
    print(f"pool {len(X) - round(len(X) / 3)}, held-out {round(len(X) / 3)}, {len(seeds)} seeds, "
          f"retrain every {max_batch} labels; curves: {csv_path}, {png_path}")
    return 0 if report(curves) else 1
