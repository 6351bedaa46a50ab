"""Replaying active learning on multi-label (tag) data: micro-F1 and mAP per strategy.

The multi-label twin of :mod:`labeler.learning.simulation.replay`. A 0/1 tag matrix whose
every row is known plays the annotator; each round a strategy of
:mod:`labeler.learning.tag_query` picks pool images, their tags are revealed and the round
is fitted as a tag round is (:func:`labeler.learning.tags.fit_tag_round`: heads, one
out-of-fold pass, F1-best thresholds). At each checkpoint the held-out split is scored:
micro-F1 at the round's thresholds and mAP (mean over tags of average precision).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

from labeler.errors import LabelerError
from labeler.learning.heads import pool_statistics
from labeler.learning.query import TODAY, AutoPolicy
from labeler.learning.tag_heads import check_tag_matrix
from labeler.learning.tag_metrics import tag_metrics
from labeler.learning.tag_query import TAG_SCORES, TAG_STRATEGIES, rank_tag_pool
from labeler.learning.tags import fit_tag_round

from .replay import DEFAULT_HOLDOUT_FRACTION


class TagCurveRow(NamedTuple):
    """One point of a multi-label learning curve, measured on the held-out split."""

    strategy: str
    seed: int
    n_labels: int
    micro_f1: float
    map: float
    macro_f1: float


def split_tag_pool(n_items: int, seed: int,
                   holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``n_items`` positions into a sorted pool and held-out set.

    Not stratified: no exact stratification over many tags at once exists, and with a few
    thousand images a random third keeps every common tag's share close.
    """
    order = np.random.default_rng(seed).permutation(n_items)
    n_held = int(round(n_items * holdout_fraction))
    if n_held < 1 or n_held >= n_items:
        raise LabelerError(f"{n_items} images cannot be split into a pool and a held-out set; "
                           "a simulation needs at least a few images.")
    return np.sort(order[n_held:]), np.sort(order[:n_held])


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def simulate_tags(
    X: np.ndarray,
    Y: np.ndarray,
    strategies: Sequence[str],
    checkpoints: Sequence[int],
    seeds: Sequence[int] = (0, 1, 2),
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    max_batch: int | None = None,
    on_row: Callable[[TagCurveRow], None] | None = None,
    policy: AutoPolicy = TODAY,
) -> list[TagCurveRow]:
    """Replay active learning with the true tags as the annotator.

    For each seed the data is split once into a pool and a held-out set, and every strategy
    starts from zero labels on that split. Strategies that need a model pick at random
    until the first round is fitted (after the first batch).

    Args:
        X: Embeddings, shape ``(n_items, dim)``.
        Y: True 0/1 tags, shape ``(n_items, n_tags)``.
        strategies: Keys of :data:`labeler.learning.tag_query.TAG_STRATEGIES`.
        checkpoints: Increasing label counts at which the held-out split is scored.
        seeds: One split and one stream of random choices per seed.
        holdout_fraction: Share of the images held out for measuring.
        max_batch: Most labels per round; None means one round per checkpoint.
        on_row: Called with each row as soon as it is measured.
        policy: ``auto``'s cold start and switch point.

    Returns:
        One row per (strategy, seed, checkpoint), in that nesting order.

    Raises:
        ValueError: Unknown strategy, bad checkpoints, mismatched ``X`` and ``Y``, or a
            budget larger than the pool.
    """
    X = np.asarray(X)
    Y = check_tag_matrix(Y, len(X))
    unknown = [s for s in strategies if s not in TAG_STRATEGIES]
    if unknown:
        raise ValueError(f"Unknown tag strategy {unknown[0]!r}; choose from "
                         f"{', '.join(TAG_STRATEGIES)}.")
    checkpoints = [int(c) for c in checkpoints]
    if not checkpoints or checkpoints[0] <= 0 or np.any(np.diff(checkpoints) <= 0):
        raise ValueError(f"checkpoints must be positive and increasing; got {checkpoints}.")
    rows: list[TagCurveRow] = []
    with threadpool_limits(limits=1):  # as simulate(): threaded BLAS only fights on 2 cores
        for seed in seeds:
            pool, held_out = split_tag_pool(len(X), seed, holdout_fraction)
            if checkpoints[-1] > len(pool):
                raise ValueError(f"The budget of {checkpoints[-1]} labels exceeds the pool of "
                                 f"{len(pool)} images; lower the budget or the held-out share.")
            X_pool = X[pool]
            standardisation = pool_statistics(X_pool)
            for strategy in strategies:
                rng = np.random.default_rng([seed, zlib.crc32(strategy.encode())])
                for n_labels, scores in _run_tag_strategy(
                        X_pool, Y[pool], X[held_out], Y[held_out], strategy, checkpoints,
                        max_batch, rng, standardisation, policy):
                    rows.append(TagCurveRow(strategy, int(seed), n_labels, *scores))
                    if on_row is not None:
                        on_row(rows[-1])
    return rows


def _run_tag_strategy(
    X_pool: np.ndarray, Y_pool: np.ndarray, X_test: np.ndarray, Y_test: np.ndarray,
    strategy: str, checkpoints: list[int], max_batch: int | None, rng: np.random.Generator,
    standardisation: tuple[np.ndarray, np.ndarray], policy: AutoPolicy,
) -> list[tuple[int, tuple[float, float, float]]]:
    labelled = np.zeros(len(X_pool), dtype=bool)
    fitted = None
    curve = []
    for target in checkpoints:
        while (n_labelled := int(labelled.sum())) < target:
            n = target - n_labelled if max_batch is None else min(max_batch, target - n_labelled)
            proba = None if fitted is None else fitted.head.predict_proba(X_pool)
            name = ("random" if proba is None and strategy.removesuffix("_diverse") in TAG_SCORES
                    else strategy)
            picks = rank_tag_pool(
                name, n=n, labelled_mask=labelled, proba=proba,
                thresholds=None if fitted is None else fitted.thresholds,
                embeddings=X_pool, n_tags=Y_pool.shape[1], rng=rng, policy=policy).indices
            if len(picks) == 0:  # cannot happen while target <= pool size; never spin
                raise RuntimeError(f"{strategy!r} picked nothing with {n_labelled} labels.")
            labelled[picks] = True
            fitted = fit_tag_round(X_pool, Y_pool, labelled, standardisation=standardisation,
                                   rng=rng)
        measured = tag_metrics(Y_test, fitted.head.predict_proba(X_test), fitted.thresholds)
        curve.append((target, tuple(_nan_if_none(measured[key])
                                    for key in ("micro_f1", "map", "macro_f1"))))
    return curve
