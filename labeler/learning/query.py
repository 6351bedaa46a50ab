"""The query strategies a round (and ``labeler simulate``) can name, and what ``auto`` means.

Extends :func:`labeler.learning.strategies.rank_pool` with the coverage cold starts of
:mod:`labeler.learning.coverage` and with an :class:`AutoPolicy`: which cold start ``auto``
uses, and after how many labels per class it hands over to which model-based strategy.
Everything else is delegated unchanged, so a name of
:data:`labeler.learning.strategies.STRATEGIES` means here what it means there. A round and
``labeler simulate`` both rank through :func:`rank_pool` here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import coverage, strategies
from .rng import RandomLike
from .strategies import Picks

#: Name -> help text of the strategies added here.
COVERAGE_STRATEGIES: dict[str, str] = {
    "probcover": "Cold start: greedy cover of the pool by pure balls (ProbCover).",
    "maxherding": "Cold start: greedy kernel coverage of the pool (MaxHerding).",
    "typiclust": "Cold start: TypiClust as published (normalised features, big clusters first).",
}
STRATEGIES: dict[str, str] = {**strategies.STRATEGIES, **COVERAGE_STRATEGIES}
#: Strategies that rank without a model (``auto`` cold-starts until there is one).
NEEDS_NO_MODEL = frozenset({"auto", "random", "typical", *COVERAGE_STRATEGIES})


@dataclass(frozen=True)
class AutoPolicy:
    """What ``auto`` does: a cold start, then a model-based strategy.

    Attributes:
        cold_start: A strategy that needs no model (``typical`` or a coverage strategy).
        labels_per_class: ``auto`` cold-starts while there are fewer labels than this per
            class (or fewer than two classes labelled).
        then: The strategy after the switch (needs a model).
    """

    cold_start: str = "typical"
    labels_per_class: float = strategies.COLD_START_LABELS_PER_CLASS
    then: str = "margin_diverse"

    def choose(self, n_labels: int, n_classes_labelled: int, n_classes: int) -> str:
        """The concrete strategy for this many labels: ``strategies.choose_strategy``'s rule,
        with this policy's switch point and strategies on either side of it."""
        phase = strategies.choose_strategy(n_labels, n_classes_labelled, n_classes,
                                           labels_per_class=self.labels_per_class)
        return self.cold_start if phase == "typical" else self.then


#: Today's policy, the same as :func:`labeler.learning.strategies.choose_strategy`.
TODAY = AutoPolicy()


def rank_pool(
    strategy: str,
    *,
    n: int,
    labelled_mask: np.ndarray,
    proba: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    n_classes: int | None = None,
    rng: RandomLike = None,
    policy: AutoPolicy = TODAY,
) -> Picks:
    """Score every pool item and pick the next ``n``: :func:`labeler.learning.strategies.rank_pool`
    plus the coverage strategies and a configurable ``auto``.

    Args:
        strategy: A key of :data:`STRATEGIES`.
        n: Batch size.
        labelled_mask: Boolean, shape ``(n_items,)``; True where the item has a label.
        proba: Class probabilities of every pool item, or None before there is a model.
        embeddings: Pool embeddings, shape ``(n_items, dim)``.
        n_classes: Classes defined in the project; defaults to the columns of ``proba``.
        rng: Generator or seed.
        policy: What ``auto`` resolves to.

    Returns:
        The picks, every item's score (``-inf`` for labelled items) and the strategy used.

    Raises:
        ValueError: Unknown strategy, or a strategy whose inputs were not given.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")
    labelled_mask = np.asarray(labelled_mask, dtype=bool)
    n_known = 0 if proba is None else proba.shape[1]
    if strategy == "auto" and embeddings is not None:
        strategy = policy.choose(int(labelled_mask.sum()), n_known, n_classes or n_known)
        if proba is None and strategy not in ("random", "typical", *COVERAGE_STRATEGIES):
            strategy = policy.cold_start
    if strategy not in COVERAGE_STRATEGIES:
        return strategies.rank_pool(strategy, n=n, labelled_mask=labelled_mask, proba=proba,
                                  embeddings=embeddings, n_classes=n_classes, rng=rng)
    if embeddings is None:
        raise ValueError(f"Strategy {strategy!r} needs the embeddings; compute them first.")
    if embeddings.shape[0] != len(labelled_mask):
        raise ValueError(f"embeddings has {embeddings.shape[0]} rows but labelled_mask has "
                         f"{len(labelled_mask)}; pass one row per pool item, in pool order.")
    labelled = np.flatnonzero(labelled_mask)
    if strategy == "probcover":
        picks, scores = coverage.probcover_picks(
            embeddings, n, max(n_classes or n_known, 2), rng, labelled)
    elif strategy == "maxherding":
        picks, scores = coverage.maxherding_picks(embeddings, n, rng, labelled)
    else:
        picks, scores = coverage.typiclust_picks(embeddings, n, rng, labelled)
    scores[labelled_mask] = -np.inf
    return Picks(indices=picks, scores=scores, strategy=strategy)
