"""Randomness passed explicitly, so that a round or a simulation can be replayed."""

from __future__ import annotations

import numpy as np

#: A generator, a seed, or None (fresh entropy): what every function taking ``rng`` accepts.
RandomLike = np.random.Generator | int | None


def seed_of(rng: RandomLike) -> int:
    """An int seed drawn from ``rng``, for scikit-learn's ``random_state``."""
    return int(np.random.default_rng(rng).integers(2**31 - 1))
