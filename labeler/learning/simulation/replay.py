"""Replaying active learning: how many labels each query strategy needs on labelled data.

The engine of ``labeler simulate``. A dataset whose labels are all known plays the
annotator (the "oracle"): each round a strategy picks pool images, their labels are
revealed, the head is refitted, and its accuracy on a held-out split is recorded at fixed
numbers of labels. The result is a learning curve per strategy (written by
:mod:`labeler.learning.simulation.plot`), the same comparison the sampling policy in
:mod:`labeler.learning.strategies` was chosen by. No Flask, no database, no TensorFlow.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from labeler.errors import LabelerError
from labeler.learning.calibration import ReliabilityCurve, apply_temperature, reliability_curve
from labeler.learning.head_options import DEFAULT_HEAD, HEAD_OPTIONS, head_factory
from labeler.learning.heads import LogisticHead, NotEnoughLabels
from labeler.learning.pseudo_label import UNLABELLED
from labeler.learning.query import STRATEGIES, TODAY, AutoPolicy, rank_pool
from labeler.learning.round_fit import fit_head, fit_round

# The Fashion-MNIST measurements behind the sampling policy used a third of the data as the
# held-out set (pool 2,000, held-out 1,000).
DEFAULT_HOLDOUT_FRACTION = 1 / 3
# These strategies score with the model's probabilities, so they cannot run before the head
# can be trained; until then they pick at random (the usual "random seed set").
_NEEDS_MODEL = frozenset({"least_confident", "margin", "entropy", "margin_diverse"})


class CurveRow(NamedTuple):
    """One point of a learning curve: held-out accuracy after ``n_labels`` labels.

    With ``calibrate=True`` also the held-out expected calibration error of the head's
    probabilities as they are (``ece``) and at the temperature a round fits on the labels'
    out-of-fold probabilities (``ece_calibrated``, at ``temperature``); NaN otherwise.
    """

    strategy: str
    seed: int
    n_labels: int
    accuracy: float
    ece: float = math.nan
    ece_calibrated: float = math.nan
    temperature: float = math.nan


#: Called with a row and its held-out reliability curves before and after calibration.
ReliabilityHook = Callable[[CurveRow, ReliabilityCurve, ReliabilityCurve], None]


def label_schedule(budget: int, step: int) -> list[int]:
    """Label counts at which to measure: ``step, 2*step, ...`` up to and including ``budget``.

    Args:
        budget: The largest number of labels.
        step: Labels added between measurements.

    Returns:
        Increasing label counts; ``budget`` is the last even if ``step`` does not divide it.
    """
    if step <= 0 or budget <= 0:
        raise ValueError(f"budget and step must be positive; got {budget} and {step}.")
    counts = list(range(step, budget + 1, step))
    return counts if counts and counts[-1] == budget else [*counts, budget]


def split_pool(
    y: np.ndarray, seed: int, holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """Split positions into a pool and a held-out set, stratified by class.

    Args:
        y: Labels, shape ``(n_items,)``.
        seed: The same seed always gives the same split.
        holdout_fraction: Share of each class that is held out.

    Returns:
        ``(pool, held_out)``: sorted positions into ``y``.

    Raises:
        LabelerError: Fewer than two classes, or a class with a single image.
    """
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2 or counts.min() < 2:
        raise LabelerError(
            "A simulation needs at least two classes with two or more images each; "
            f"class {classes[counts.argmin()]!r} has {counts.min()}."
        )
    pool, held_out = train_test_split(
        np.arange(len(y)), test_size=holdout_fraction, stratify=y, random_state=seed
    )
    return np.sort(pool), np.sort(held_out)


def full_pool_accuracy(
    X: np.ndarray,
    y: np.ndarray,
    seeds: Iterable[int],
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    make_head: Callable[[], Any] | None = None,
) -> float:
    """Mean held-out accuracy of a head trained on the whole labelled pool: the ceiling.

    Args:
        X: Embeddings, shape ``(n_items, dim)``.
        y: True labels, shape ``(n_items,)``.
        seeds: The seeds of the splits, as given to :func:`simulate`.
        holdout_fraction: As given to :func:`simulate`.
        make_head: As given to :func:`simulate`.

    Returns:
        Accuracy on the held-out set, averaged over the seeds.
    """
    y = np.asarray(y)
    scores = []
    with threadpool_limits(limits=1):  # see simulate
        for seed in seeds:
            pool, held_out = split_pool(y, seed, holdout_fraction)
            head = (make_head or LogisticHead)().fit(X[pool], y[pool])
            scores.append(float(np.mean(head.predict(X[held_out]) == y[held_out])))
    return float(np.mean(scores))


def simulate(
    X: np.ndarray,
    y: np.ndarray,
    strategies: Sequence[str],
    checkpoints: Sequence[int],
    seeds: Sequence[int] = (0, 1, 2),
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    max_batch: int | None = None,
    on_row: Callable[[CurveRow], None] | None = None,
    make_head: Callable[[], Any] | None = None,
    head: str = DEFAULT_HEAD,
    policy: AutoPolicy = TODAY,
    calibrate: bool = False,
    on_reliability: ReliabilityHook | None = None,
) -> list[CurveRow]:
    """Replay active learning with the true labels as the annotator.

    For each seed the data is split once (stratified) into a pool and a held-out set, and
    every strategy starts from zero labels on that same split, so the curves are compared
    on equal terms. Each round a strategy asks :func:`~labeler.learning.query.rank_pool`
    for images (``auto`` resolves through ``policy`` there), their labels are revealed and
    the head is refitted as a round fits it (:mod:`labeler.learning.round_fit`: a
    semi-supervised head sees the whole pool, unlabelled rows marked).
    Strategies that need a model pick at random until the head can be trained.

    While the labels cover a single class the head cannot be trained
    (:class:`~labeler.learning.heads.NotEnoughLabels`); the accuracy recorded then is that of
    predicting that class for every image, the best a model could do with those labels.

    Args:
        X: Embeddings, shape ``(n_items, dim)``.
        y: True labels (strings or integers), shape ``(n_items,)``.
        strategies: Keys of :data:`labeler.learning.strategies.STRATEGIES`.
        checkpoints: Increasing label counts at which accuracy is recorded, e.g. from
            :func:`label_schedule`.
        seeds: One split and one stream of random choices per seed.
        holdout_fraction: Share of each class held out for measuring accuracy.
        max_batch: Most labels per round (the head is refitted after each round); None
            means one round per checkpoint.
        on_row: Called with each row as soon as it is measured (for progress output).
        make_head: Returns an unfitted head with the estimator contract of
            :mod:`labeler.learning.heads` (raising ``NotEnoughLabels`` on one class);
            overrides ``head``.
        head: A key of :data:`labeler.learning.head_options.HEAD_OPTIONS`, built per split
            with :func:`~labeler.learning.head_options.head_factory`, as a round builds it.
        policy: What ``auto`` means (cold start, switch point, then what).
        calibrate: Also measure the held-out calibration error at each checkpoint, as is
            and at the temperature :func:`~labeler.learning.round_fit.fit_round` fits.
        on_reliability: With ``calibrate``, called with each row and the held-out
            reliability curves before and after calibration.

    Returns:
        One row per (strategy, seed, checkpoint), in that nesting order.

    Raises:
        ValueError: Unknown strategy, bad checkpoints, or mismatched ``X`` and ``y``.
        LabelerError: A class has fewer than two images.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be 2-D with one row per label; got {X.shape} and {y.shape}.")
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"Unknown strategy {unknown[0]!r}; choose from {', '.join(STRATEGIES)}.")
    if head not in HEAD_OPTIONS:
        raise ValueError(f"Unknown head {head!r}; choose from {', '.join(HEAD_OPTIONS)}.")
    # Class codes 0..k-1, as a round's class ids are integers: -1 marks an unlabelled row.
    y = np.unique(y, return_inverse=True)[1].astype(np.int64)
    checkpoints = [int(c) for c in checkpoints]
    if not checkpoints or checkpoints[0] <= 0 or np.any(np.diff(checkpoints) <= 0):
        raise ValueError(f"checkpoints must be positive and increasing; got {checkpoints}.")
    n_classes = len(np.unique(y))
    rows: list[CurveRow] = []
    # One BLAS/OpenMP thread: on a busy 2-core machine threaded BLAS made each head fit and
    # k-means 20-100x slower (threads spinning against each other), and matrices this small
    # (a pool, a few hundred labels) have little to gain from threads anyway.
    with threadpool_limits(limits=1):
        for seed in seeds:
            pool, held_out = split_pool(y, seed, holdout_fraction)
            if checkpoints[-1] > len(pool):
                raise ValueError(
                    f"The budget of {checkpoints[-1]} labels exceeds the pool of {len(pool)} "
                    f"images (seed {seed}); lower the budget or the held-out fraction."
                )
            # As in a retrain round: the head is standardised by statistics of the whole pool
            # (and a semi-supervised head gets the pool's graph, built once per split).
            seed_head = make_head or head_factory(head, X[pool], seed=seed)
            for strategy in strategies:
                # Seeded by (seed, strategy): adding a strategy leaves the others' runs alone.
                rng = np.random.default_rng([seed, zlib.crc32(strategy.encode())])
                curve = _run_strategy(
                    X[pool],
                    y[pool],
                    X[held_out],
                    y[held_out],
                    strategy,
                    checkpoints,
                    n_classes,
                    max_batch,
                    rng,
                    seed_head,
                    policy,
                    calibrate,
                )
                for measured, reliability in curve:
                    rows.append(CurveRow(strategy, int(seed), *measured))
                    if on_row is not None:
                        on_row(rows[-1])
                    if on_reliability is not None and reliability is not None:
                        on_reliability(rows[-1], *reliability)
    return rows


def _run_strategy(
    X_pool: np.ndarray,
    y_pool: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    strategy: str,
    checkpoints: list[int],
    n_classes: int,
    max_batch: int | None,
    rng: np.random.Generator,
    make_head: Callable[[], Any],
    policy: AutoPolicy = TODAY,
    calibrate: bool = False,
) -> list[tuple[tuple[int, float, float, float, float],
                tuple[ReliabilityCurve, ReliabilityCurve] | None]]:
    """The (checkpoint, accuracy, ece, ece_calibrated, temperature) of each checkpoint, and
    the held-out reliability curves before and after calibration (None unless measured)."""
    labelled = np.zeros(len(X_pool), dtype=bool)
    head = None
    curve = []
    for target in checkpoints:
        while (n_labelled := int(labelled.sum())) < target:
            n = target - n_labelled if max_batch is None else min(max_batch, target - n_labelled)
            proba = None if head is None else head.predict_proba(X_pool)
            name = "random" if proba is None and strategy in _NEEDS_MODEL else strategy
            picks = rank_pool(
                name,
                n=n,
                labelled_mask=labelled,
                proba=proba,
                embeddings=X_pool,
                n_classes=n_classes,
                rng=rng,
                policy=policy,
            ).indices
            if len(picks) == 0:  # cannot happen while target <= pool size; never spin
                raise RuntimeError(f"{strategy!r} picked nothing with {n_labelled} labels.")
            labelled[picks] = True
            head = _fit_or_none(make_head, X_pool, np.where(labelled, y_pool, UNLABELLED))
        nan = math.nan  # one object: rows compare equal (containers compare by identity first)
        if head is None:  # one class labelled: predicting it everywhere is all they support
            accuracy = float(np.mean(y_test == y_pool[labelled][0]))
            curve.append(((target, accuracy, nan, nan, nan), None))
            continue
        proba = head.predict_proba(X_test)
        accuracy = float(np.mean(head.classes_[proba.argmax(axis=1)] == y_test))
        if not calibrate:
            curve.append(((target, accuracy, nan, nan, nan), None))
            continue
        # Exactly what a round does with these labels: refit, one out-of-fold pass, the
        # temperature from it. The head is the same (the fit is deterministic).
        fitted = fit_round(make_head, X_pool, np.where(labelled, y_pool, UNLABELLED))
        before = reliability_curve(proba, y_test, head.classes_)
        after = reliability_curve(apply_temperature(proba, fitted.temperature), y_test,
                                  head.classes_)
        curve.append(((target, accuracy, before.ece, after.ece, fitted.temperature),
                      (before, after)))
    return curve


def _fit_or_none(make_head: Callable[[], Any], X: np.ndarray, labels: np.ndarray) -> Any | None:
    try:
        return fit_head(make_head, X, labels)
    except NotEnoughLabels:
        return None
