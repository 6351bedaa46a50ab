"""Suspected label errors: the hand-written rule against cleanlab, on flipped labels.

Fashion-MNIST images of the demo with EfficientNet-Lite0 embeddings. For each labelled-set
size (a round sees a few hundred labels; 3,000 is the whole demo) and seed: draw that many
images, flip ``--noise`` of their labels to another class at random, compute out-of-fold
probabilities with the head a round uses (``LogisticHead`` standardised by the statistics of
the whole pool, 5-fold ``cross_validated_proba``, as ``labeler.training`` does), then ask each
method which labels are suspect. A flagged item is a hit when its label was flipped.

Printed per size: precision and recall of the flipped labels among the flagged items per
seed, their means, F1, precision among the first k flagged (k = number of flipped labels; the
review flow shows the list in this order), items flagged and the time each method takes.
The hand-written rule labeler used before issue 15 (``handwritten_label_errors.py``, next to
this file) is the same-run baseline; every cleanlab ``filter_by`` is measured (ranked by
``self_confidence``), then the chosen one (``labeler.learning.label_issues.DEFAULT_FILTER``,
what a round uses) with cleanlab's other two rankings.

    python bench/label_issues.py [--cache bench/out] [--sizes 3000 1000 300] [--seeds 3]
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from embedded_sets import load_set
from handwritten_label_errors import suspected_label_errors

from labeler.learning.heads import LogisticHead, pool_statistics
from labeler.learning.label_issues import (
    DEFAULT_FILTER,
    FILTERS,
    RANKINGS,
    SuspectedError,
    find_label_issues,
)
from labeler.learning.label_quality import cross_validated_proba

Method = Callable[[np.ndarray, np.ndarray, np.ndarray], list[SuspectedError]]
METHODS: dict[str, Method] = {"hand-written rule (before)": suspected_label_errors}
METHODS.update({
    f"cleanlab {name}": functools.partial(find_label_issues, filter_by=name) for name in FILTERS
})
# The chosen filter (DEFAULT_FILTER) in cleanlab's other orders: only P@flips can change.
METHODS.update({
    f"  ranked by {rank}": functools.partial(find_label_issues, rank_by=rank)
    for rank in RANKINGS[1:]
})


def flip_labels(y: np.ndarray, share: float, n_classes: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A copy of ``y`` with ``round(share * len(y))`` labels moved to another random class."""
    flipped = rng.choice(len(y), size=round(share * len(y)), replace=False)
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, n_classes, size=len(flipped))) % n_classes
    return noisy, np.sort(flipped)


def scores(errors: list[SuspectedError], flipped: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1 and precision among the first len(flipped) flagged items."""
    flagged = np.array([e.index for e in errors], dtype=np.int64)
    hits = np.isin(flagged, flipped)
    precision = hits.mean() if len(flagged) else 0.0
    recall = hits.sum() / len(flipped)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    at_k = hits[: len(flipped)].sum() / len(flipped)
    return {"p": precision, "r": recall, "f1": f1, "p_at_k": at_k, "flagged": len(flagged)}


def timed(method: Method, *args: np.ndarray) -> tuple[list[SuspectedError], float]:
    """The method's result and its best time over a few calls, in milliseconds."""
    best = np.inf
    for _ in range(5):
        start = time.perf_counter()
        result = method(*args)
        best = min(best, time.perf_counter() - start)
    return result, best * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("bench/out"),
                        help="embedded sets (<name>.npz), backbone weights, vector cache")
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 1000, 300],
                        help="labelled-set sizes")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--noise", type=float, default=0.05, help="share of labels flipped")
    args = parser.parse_args()

    X, y, names = load_set("demo3k", args.cache)
    n_classes = len(names)
    mean, scale = pool_statistics(X)  # the round standardises by the whole pool
    make_head = functools.partial(LogisticHead, pool_mean=mean, pool_scale=scale)
    print(f"demo3k: {len(X)} images x {X.shape[1]} dims, {n_classes} classes; "
          f"{args.noise:.0%} of labels flipped; {args.seeds} seeds\n")

    for size in args.sizes:
        results: dict[str, list[dict[str, float]]] = {name: [] for name in METHODS}
        cv_seconds, accuracies, n_flipped = [], [], 0
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            rows = np.sort(rng.choice(len(X), size=min(size, len(X)), replace=False))
            noisy, flipped = flip_labels(y[rows], args.noise, n_classes, rng)
            n_flipped = len(flipped)
            start = time.perf_counter()
            cv = cross_validated_proba(make_head, np.asarray(X[rows], np.float32), noisy,
                                       max_folds=5, rng=seed)
            cv_seconds.append(time.perf_counter() - start)
            assert cv is not None, "every class needs two labels; use a larger size"
            proba, classes = cv
            accuracies.append(float((classes[proba.argmax(axis=1)] == y[rows]).mean()))
            for name, method in METHODS.items():
                errors, ms = timed(method, proba, noisy, classes)
                results[name].append({**scores(errors, flipped), "ms": ms})
        print(f"{len(rows)} labelled, {n_flipped} flipped per seed; 5-fold CV "
              f"{np.mean(cv_seconds):.1f} s per seed, out-of-fold accuracy against the true "
              f"labels {np.mean(accuracies):.3f}")
        seed_heads = "".join(f"  seed{s} P/R" for s in range(args.seeds))
        print(f"{'method':<40}{seed_heads}  mean P  mean R  mean F1  P@flips  flagged      ms")
        for name, runs in results.items():
            cells = "".join(f"  {run['p']:.2f}/{run['r']:.2f}" for run in runs)
            mean_of = {key: float(np.mean([run[key] for run in runs])) for key in runs[0]}
            print(f"{name:<40}{cells}  {mean_of['p']:6.3f}  {mean_of['r']:6.3f}  "
                  f"{mean_of['f1']:7.3f}  {mean_of['p_at_k']:7.3f}  {mean_of['flagged']:7.1f}  "
                  f"{mean_of['ms']:6.2f}")
        print(f"(indented: {DEFAULT_FILTER} in cleanlab's other orders)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
