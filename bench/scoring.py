"""Scoring and picking from a 1,000,000-item pool, given its probabilities.

What ``rank_pool("margin", n=100)`` costs once a round has predicted the pool: the margin
of every item, then the 100 best. (Predicting the pool itself is bench/rescoring.py.)
Timed on 10-class probabilities (a Dirichlet sample), best of ``--repeats``.

Baselines in the same run: the same margin followed by a full sort of the pool (what
``select_top``'s partition replaces), and modAL's ``margin_sampling`` on the same
probabilities. Goal: under 0.5 s on the 2-core machine (it was a wall-clock assertion in
tests/test_sampling.py, which belongs here rather than in a test).

    python bench/scoring.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
from modAL.uncertainty import margin_sampling

from labeler.learning.strategies import margin_scores, rank_pool

GOAL_S = 0.5
N_PICKS = 100


class _Fixed:
    """A classifier stand-in for modAL: its probabilities are given."""

    def __init__(self, proba: np.ndarray) -> None:
        self.proba = proba

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.proba


def best_of(repeats: int, run: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    """The fastest of ``repeats`` runs, and what the last one returned."""
    times, result = [], np.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    proba = np.random.default_rng(0).dirichlet(np.ones(10), size=args.rows)
    mask = np.zeros(args.rows, dtype=bool)
    print(f"scoring {args.rows:,} items x 10 classes; {os.cpu_count()} CPUs; "
          "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))

    ours, picks = best_of(args.repeats, lambda: rank_pool(
        "margin", n=N_PICKS, labelled_mask=mask, proba=proba).indices)
    sort, by_sort = best_of(args.repeats, lambda: np.argsort(
        -margin_scores(proba), kind="stable")[:N_PICKS])
    modal, by_modal = best_of(args.repeats, lambda: margin_sampling(
        _Fixed(proba), np.zeros((args.rows, 1)), n_instances=N_PICKS)[0])

    print(f"labeler rank_pool('margin', n={N_PICKS}):   best {ours:.3f} s")
    print(f"baseline margin + full sort:           best {sort:.3f} s   same picks: "
          f"{len(np.intersect1d(picks, by_sort))}/{N_PICKS}")
    print(f"baseline modAL margin_sampling:        best {modal:.3f} s   same picks: "
          f"{len(np.intersect1d(picks, by_modal))}/{N_PICKS}")
    print(f"goal <= {GOAL_S} s: {'MET' if ours <= GOAL_S else 'MISSED'} ({ours:.3f} s)")


if __name__ == "__main__":
    main()
