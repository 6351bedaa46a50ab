"""Query strategies for tag (multi-label) projects, with the single-label cold start and diversity.

The probabilities of a tag project are independent per tag (rows do not sum to 1), so the
class-based uncertainty scores of :mod:`labeler.learning.strategies` do not apply. Two
multi-label scores replace them, higher = ask first:

* ``tag_threshold``: how close the image's most doubtful tag is to its decision threshold,
  measured in log-odds (``-min_t |logit p_t - logit threshold_t|``): a tag whose threshold
  is 0.1 is about as doubtful at 0.08 as a tag whose threshold is 0.5 is at 0.45.
* ``tag_entropy``: the summed binary entropy of all tags (every doubtful tag counts).

Each has a ``_diverse`` form that clusters the top candidates and takes the best of each
cluster (:func:`~labeler.learning.strategies.diverse_uncertain_picks`, as ``margin_diverse``).
``auto`` cold-starts exactly as single-label ``auto`` does (``typical`` by default, through
:func:`labeler.learning.query.rank_pool`) until there are
:data:`~labeler.learning.strategies.COLD_START_LABELS_PER_CLASS` labels per tag, then uses
:data:`AUTO_THEN`, the better of the two scores with diversity on the Fashion-MNIST mosaic
benchmark (``bench/label_efficiency.py --multi-label``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import logit

from . import query, strategies
from .rng import RandomLike
from .strategies import Picks

#: Name -> help text of the tag strategies (the cold starts and ``random`` are shared).
TAG_SCORES: dict[str, str] = {
    "tag_threshold": "Images whose most doubtful tag is closest (in log-odds) to its "
                     "threshold.",
    "tag_entropy": "Images whose tags have the highest summed binary entropy.",
    "tag_threshold_diverse": "The best image by tag_threshold of each cluster of doubtful "
                             "images.",
    "tag_entropy_diverse": "The best image by tag_entropy of each cluster of doubtful images.",
}
TAG_STRATEGIES: dict[str, str] = {
    "auto": "Cold start ('typical') until there are a few labels per tag, then "
            "'tag_threshold_diverse'.",
    "random": strategies.STRATEGIES["random"],
    **TAG_SCORES,
    **{name: query.STRATEGIES[name] for name in ("typical", *query.COVERAGE_STRATEGIES)},
}
#: What ``auto`` uses after its cold start (the mosaic benchmark's winner).
AUTO_THEN = "tag_threshold_diverse"
# Probabilities are clipped here before taking logits, so 0 and 1 stay finite.
_EPS = 1e-7


def threshold_closeness_scores(proba: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Score ``-min_t |logit(p_t) - logit(threshold_t)|``: 0 when some tag sits on its
    threshold, more negative the surer every tag is.

    Args:
        proba: Tag probabilities, shape ``(n_items, n_tags)``.
        thresholds: Decision threshold per tag, shape ``(n_tags,)``.

    Returns:
        float64 scores of shape ``(n_items,)``, higher = more doubtful.
    """
    proba = np.clip(np.asarray(proba, dtype=np.float64), _EPS, 1.0 - _EPS)
    cuts = np.clip(np.asarray(thresholds, dtype=np.float64), _EPS, 1.0 - _EPS)
    if proba.ndim != 2 or cuts.shape != (proba.shape[1],):
        raise ValueError(f"proba {proba.shape} and thresholds {cuts.shape} do not fit: pass "
                         "one threshold per tag column.")
    return -np.abs(logit(proba) - logit(cuts)).min(axis=1)


def summed_entropy_scores(proba: np.ndarray) -> np.ndarray:
    """Score the sum over tags of the binary entropy (natural log) of ``p_t``.

    Args:
        proba: Tag probabilities, shape ``(n_items, n_tags)``.

    Returns:
        float64 scores of shape ``(n_items,)``, higher = more doubtful.
    """
    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    if p.ndim != 2:
        raise ValueError(f"proba must be 2-D (n_items, n_tags); got shape {p.shape}.")
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -(p * np.log(p) + (1.0 - p) * np.log1p(-p))
    return np.nan_to_num(entropy, nan=0.0).sum(axis=1)  # 0 log 0 counts as 0


_SCORERS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "tag_threshold": threshold_closeness_scores,
    "tag_entropy": lambda proba, _thresholds: summed_entropy_scores(proba),
}


def choose_tag_strategy(n_labels: int, n_tags: int, has_model: bool,
                        policy: query.AutoPolicy = query.TODAY) -> str:
    """What ``auto`` means now: the policy's cold start, or :data:`AUTO_THEN`.

    Cold start while there is no model or fewer than ``policy.labels_per_class`` labels per
    tag (every label says something about every tag, but a handful of labels still cannot
    place ten thresholds).
    """
    if not has_model or n_labels < policy.labels_per_class * max(n_tags, 1):
        return policy.cold_start
    return AUTO_THEN


def rank_tag_pool(
    strategy: str,
    *,
    n: int,
    labelled_mask: np.ndarray,
    proba: np.ndarray | None = None,
    thresholds: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    n_tags: int | None = None,
    rng: RandomLike = None,
    policy: query.AutoPolicy = query.TODAY,
) -> Picks:
    """Score every pool item of a tag project and pick the next ``n``.

    Args:
        strategy: A key of :data:`TAG_STRATEGIES`.
        n: Batch size.
        labelled_mask: Boolean, shape ``(n_items,)``; True where the item has its tags.
        proba: Tag probabilities of every pool item, or None before there is a model.
        thresholds: The round's threshold per tag (0.5 each when None).
        embeddings: Pool embeddings; needed by the cold starts, the diverse strategies and
            ``auto``.
        n_tags: Tags defined in the project, for ``auto``; defaults to the columns of ``proba``.
        rng: Generator or seed.
        policy: ``auto``'s cold start and switch point (its ``then`` is single-label's; tag
            projects switch to :data:`AUTO_THEN`).

    Returns:
        The picks, every item's score (``-inf`` for labelled items) and the strategy used.

    Raises:
        ValueError: Unknown strategy, or a strategy whose inputs were not given.
    """
    if strategy not in TAG_STRATEGIES:
        raise ValueError(f"Unknown tag strategy {strategy!r}; choose one of "
                         f"{', '.join(TAG_STRATEGIES)}.")
    labelled_mask = np.asarray(labelled_mask, dtype=bool)
    if strategy == "auto":
        if embeddings is None:  # neither a cold start nor diversity can run without them
            strategy = "random" if proba is None else "tag_entropy"
        else:
            tags = n_tags or (0 if proba is None else proba.shape[1])
            strategy = choose_tag_strategy(int(labelled_mask.sum()), tags, proba is not None,
                                           policy)
    base = strategy.removesuffix("_diverse")
    if base not in _SCORERS:  # random and the cold starts mean what they mean for classes
        return query.rank_pool(strategy, n=n, labelled_mask=labelled_mask,
                               embeddings=embeddings, n_classes=n_tags, rng=rng)
    if proba is None:
        raise ValueError(f"Strategy {strategy!r} needs a trained model; use 'typical' or "
                         "'auto' until images have tags.")
    proba = np.asarray(proba)
    if proba.shape[0] != len(labelled_mask):
        raise ValueError(f"proba has {proba.shape[0]} rows but labelled_mask has "
                         f"{len(labelled_mask)}; pass one row per pool item, in pool order.")
    cuts = np.full(proba.shape[1], 0.5) if thresholds is None else np.asarray(thresholds)
    scores = _SCORERS[base](proba, cuts)
    scores[labelled_mask] = -np.inf
    if strategy.endswith("_diverse"):
        if embeddings is None:
            raise ValueError(f"Strategy {strategy!r} needs the embeddings; compute them first.")
        picks = strategies.diverse_uncertain_picks(scores, embeddings, n, rng=rng)
    else:
        picks = strategies.select_top(scores, n)
    return Picks(indices=picks, scores=scores, strategy=strategy)
