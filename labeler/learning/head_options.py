"""The heads a round (and ``labeler simulate``) can fit, built the same way for both.

A head factory is made once per pool (per vector version): the logistic head needs the
pool's feature statistics, the semi-supervised heads also its neighbour graph, and neither
depends on the labels, so a round with new labels reuses them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI lists the options without importing scikit-learn
    import numpy as np

    from .pool_graph import PoolGraph

#: Name -> help text.
HEAD_OPTIONS: dict[str, str] = {
    "logistic": "Logistic regression on the labels alone (standardised by the pool).",
    "pseudo_label": "Logistic regression on the labels plus pseudo-labels that label "
                    "spreading over the pool's neighbour graph and the head agree on.",
    "self_training": "Logistic regression on the labels plus its own most confident "
                     "pseudo-labels (no graph).",
}
#: What rounds fit unless a project chooses otherwise: it won or tied at every budget on
#: every data set measured (``docs/issue16-levers.md``).
DEFAULT_HEAD = "pseudo_label"
#: Heads that need the pool's neighbour graph.
NEEDS_GRAPH = frozenset({"pseudo_label", "self_training"})


def head_factory(
    name: str, pool: np.ndarray, graph: PoolGraph | None = None, seed: int = 0
) -> Callable[[], Any]:
    """A maker of unfitted heads of the named kind for this pool.

    Args:
        name: A key of :data:`HEAD_OPTIONS`.
        pool: The pool's embeddings (float16 memory-maps are fine).
        graph: The pool's graph, if already built (it is built here otherwise).
        seed: Seed of the graph's sample and projection.

    Returns:
        A zero-argument callable returning a fresh head. Semi-supervised heads (attribute
        ``uses_unlabelled``) are fitted on the whole pool with unlabelled rows marked -1.

    Raises:
        ValueError: Unknown head name.
    """
    from .heads import LogisticHead, pool_statistics
    from .pool_graph import build_pool_graph
    from .pseudo_label import PseudoLabelHead

    if name not in HEAD_OPTIONS:
        raise ValueError(f"Unknown head {name!r}; choose one of {', '.join(HEAD_OPTIONS)}.")
    mean, scale = pool_statistics(pool)
    if name == "logistic":
        return functools.partial(LogisticHead, pool_mean=mean, pool_scale=scale)
    graph = graph if graph is not None else build_pool_graph(pool, rng=seed)
    share = 0.0 if name == "self_training" else 0.5
    return functools.partial(PseudoLabelHead, graph=graph, pool_mean=mean, pool_scale=scale,
                             spread_share=share)
