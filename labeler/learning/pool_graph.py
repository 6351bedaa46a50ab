"""The pool's neighbour graph and label spreading over it: the unlabelled half of a round.

:func:`build_pool_graph` makes a cosine k-nearest-neighbour graph of the pool's embeddings in
a 64-d PCA subspace, once per vector version (it depends on the vectors only; the round
caches it beside the vectors as plain arrays, :meth:`PoolGraph.arrays`), and
:func:`spread_labels` is label spreading (Zhou et al., 2004) of the labels over it.
:mod:`labeler.learning.pseudo_label` turns the spread labels into a better linear head, and
:mod:`labeler.learning.coverage` uses the same projected space for its cold starts.

Pure numpy, SciPy and scikit-learn (no Flask, no database, no TensorFlow).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import PCA

from .rng import RandomLike

# Cosine neighbours in a 64-d PCA subspace: as pure as in the full 1280-d space on
# Fashion-MNIST and digits (10-NN purity 0.77 either way) at a twentieth of the cost.
_GRAPH_DIMS = 64
_PCA_ROWS = 2_000
# Above this many rows the graph covers a uniform sample of the pool: exact neighbours
# cost n^2 x 64 multiply-adds, a few seconds at 20,000 rows but hours at 1,000,000.
_MAX_GRAPH_NODES = 20_000
# Query rows per block of the brute-force search: 1,024 x 20,000 float32 is 80 MB.
_QUERY_BLOCK = 1_024


@dataclass(frozen=True)
class PoolGraph:
    """A k-nearest-neighbour graph over (a sample of) the pool, and how rows map into it.

    Attributes:
        nodes: Sorted pool positions of the graph's nodes (all rows of a small pool).
        neighbours: Shape ``(n_nodes, k)``; entry ``[i, j]`` is the node index (into
            ``nodes``) of node ``i``'s ``j``-th neighbour.
        weights: Shape ``(n_nodes, k)``, float32 cosine similarities, clipped at 0.
        mean: Per-feature mean subtracted before projecting, shape ``(dim,)``.
        components: PCA directions, shape ``(dims, dim)``; projections are L2-normalised.
        node_vectors: The nodes' projections, shape ``(n_nodes, dims)``, float32.
        n_items: Rows of the pool the graph was built for.
    """

    nodes: np.ndarray
    neighbours: np.ndarray
    weights: np.ndarray
    mean: np.ndarray
    components: np.ndarray
    node_vectors: np.ndarray
    n_items: int

    def project(self, rows: np.ndarray) -> np.ndarray:
        """Map embedding rows into the graph's normalised PCA space (float32)."""
        Z = (np.asarray(rows, dtype=np.float32) - self.mean) @ self.components.T
        return _normalise(Z)

    def arrays(self) -> dict[str, np.ndarray]:
        """The graph as named plain arrays (what :meth:`from_arrays` takes back)."""
        return {"nodes": self.nodes, "neighbours": self.neighbours, "weights": self.weights,
                "mean": self.mean, "components": self.components,
                "node_vectors": self.node_vectors, "n_items": np.int64(self.n_items)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> PoolGraph:
        """The graph that :meth:`arrays` gave ``arrays`` for.

        Raises:
            ValueError: Missing arrays, or arrays whose shapes do not make one graph.
        """
        try:
            graph = cls(nodes=np.asarray(arrays["nodes"], dtype=np.int64),
                        neighbours=np.asarray(arrays["neighbours"], dtype=np.int64),
                        weights=np.asarray(arrays["weights"], dtype=np.float32),
                        mean=np.asarray(arrays["mean"], dtype=np.float32),
                        components=np.asarray(arrays["components"], dtype=np.float32),
                        node_vectors=np.asarray(arrays["node_vectors"], dtype=np.float32),
                        n_items=int(arrays["n_items"]))
        except KeyError as exc:
            raise ValueError(f"A saved graph lacks the array {exc.args[0]!r}.") from exc
        n_nodes = len(graph.nodes)
        consistent = (
            graph.neighbours.ndim == 2 and graph.neighbours.shape[0] == n_nodes
            and graph.weights.shape == graph.neighbours.shape
            and graph.node_vectors.shape == (n_nodes, graph.components.shape[0])
            and graph.mean.shape == (graph.components.shape[1],)
            and n_nodes <= graph.n_items
            and (n_nodes == 0 or (graph.nodes.min() >= 0 and graph.nodes.max() < graph.n_items))
            and (graph.neighbours.size == 0 or (graph.neighbours.min() >= 0
                                                and graph.neighbours.max() < n_nodes)))
        if not consistent:
            raise ValueError("A saved graph's arrays do not fit together.")
        return graph

    def node_of(self, positions: np.ndarray) -> np.ndarray:
        """Node index of each pool position, or -1 where the position is not a node."""
        positions = np.asarray(positions, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.nodes, positions), len(self.nodes) - 1)
        return np.where(self.nodes[at] == positions, at, -1)


def _normalise(Z: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z / np.maximum(norms, 1e-12)


def nearest_nodes(
    queries: np.ndarray, nodes: np.ndarray, k: int, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine k nearest neighbours of normalised ``queries`` among normalised ``nodes``.

    Args:
        queries: Shape ``(n_queries, dims)``, rows of unit length.
        nodes: Shape ``(n_nodes, dims)``, rows of unit length.
        k: Neighbours per query (at most ``n_nodes``, minus one with ``exclude_self``).
        exclude_self: ``queries`` are ``nodes`` themselves; a row is not its own neighbour.

    Returns:
        ``(indices, similarities)``, each of shape ``(n_queries, k)``, nearest first.
    """
    k = min(k, len(nodes) - int(exclude_self))
    indices = np.empty((len(queries), k), dtype=np.int64)
    sims = np.empty((len(queries), k), dtype=np.float32)
    for start in range(0, len(queries), _QUERY_BLOCK):
        S = queries[start : start + _QUERY_BLOCK] @ nodes.T
        if exclude_self:
            rows = np.arange(len(S))
            S[rows, start + rows] = -np.inf
        top = np.argpartition(-S, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(S, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        indices[start : start + len(S)] = np.take_along_axis(top, order, axis=1)
        sims[start : start + len(S)] = np.take_along_axis(top_sims, order, axis=1)
    return indices, sims


def build_pool_graph(
    embeddings: np.ndarray,
    n_neighbours: int = 10,
    max_nodes: int = _MAX_GRAPH_NODES,
    rng: RandomLike = 0,
) -> PoolGraph:
    """Build the cosine k-NN graph of a pool, once per vector version.

    Args:
        embeddings: Pool embeddings, shape ``(n_items, dim)``; float16 memory-maps are fine
            (only the sampled rows are read, in float32).
        n_neighbours: Edges per node before symmetrisation (10 was best of 10 and 20).
        max_nodes: Larger pools are represented by a uniform sample of this many rows.
        rng: Seed of the sample and the PCA.

    Returns:
        The graph. Costs ``n_nodes^2 x 64`` multiply-adds: about 2 s at 20,000 nodes on
        one core.

    Raises:
        ValueError: Fewer than two rows.
    """
    n_items = embeddings.shape[0]
    if n_items < 2:
        raise ValueError("A neighbour graph needs at least two images in the pool.")
    rng = np.random.default_rng(rng)
    nodes = np.arange(n_items) if n_items <= max_nodes else np.sort(
        rng.choice(n_items, max_nodes, replace=False))
    X = np.asarray(embeddings[nodes], dtype=np.float32)
    fit_rows = X[rng.permutation(len(X))[:_PCA_ROWS]]
    dims = min(_GRAPH_DIMS, *fit_rows.shape)
    pca = PCA(dims, svd_solver="randomized", random_state=int(rng.integers(2**31 - 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        pca.fit(fit_rows)  # a constant pool has zero variance; only the ratios (unused) break
    mean = pca.mean_.astype(np.float32)
    components = pca.components_.astype(np.float32)
    Z = _normalise((X - mean) @ components.T)
    neighbours, sims = nearest_nodes(Z, Z, n_neighbours, exclude_self=True)
    return PoolGraph(nodes=nodes.astype(np.int64), neighbours=neighbours,
                     weights=np.maximum(sims, 0.0).astype(np.float32), mean=mean,
                     components=components, node_vectors=Z, n_items=n_items)


def _normalised_adjacency(graph: PoolGraph) -> sp.csr_matrix:
    """``D^-1/2 W D^-1/2`` of the symmetrised graph (an edge either way counts)."""
    n, k = graph.neighbours.shape
    W = sp.csr_matrix((graph.weights.ravel().astype(np.float64),
                       (np.repeat(np.arange(n), k), graph.neighbours.ravel())), shape=(n, n))
    W = W.maximum(W.T)
    degree = np.asarray(W.sum(axis=1)).ravel()
    inv_sqrt = 1.0 / np.sqrt(np.where(degree > 0, degree, 1.0))
    return sp.csr_matrix(sp.diags(inv_sqrt) @ W @ sp.diags(inv_sqrt))


def label_seeds(
    graph: PoolGraph,
    positions: np.ndarray,
    codes: np.ndarray,
    n_classes: int,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """The starting label matrix ``Y0`` of label spreading, balanced across classes.

    A labelled position that is a graph node seeds itself; one outside the node sample
    (large pools) seeds its nearest nodes, weighted by similarity. Each class's column then
    sums to 1, so a class with many labels does not flood the graph (this gained 2-5 points
    over unbalanced seeds at 20-50 labels).

    Args:
        graph: The pool's graph.
        positions: Pool positions of the labelled rows.
        codes: Class index (``0 .. n_classes-1``) of each labelled row.
        n_classes: Columns of the result.
        rows: Embeddings of the labelled rows; needed only for positions outside the graph.

    Returns:
        Shape ``(n_nodes, n_classes)``, float64.
    """
    seeds = np.zeros((len(graph.nodes), n_classes))
    codes = np.asarray(codes, dtype=np.int64)
    node = graph.node_of(positions)
    inside = node >= 0
    np.add.at(seeds, (node[inside], codes[inside]), 1.0)
    if not inside.all():
        if rows is None:
            raise ValueError("Labelled rows outside the graph's sample need their embeddings.")
        near, sims = nearest_nodes(graph.project(np.asarray(rows)[~inside]),
                                   graph.node_vectors, graph.neighbours.shape[1])
        np.add.at(seeds, (near, np.repeat(codes[~inside], near.shape[1]).reshape(near.shape)),
                  np.maximum(sims, 0.0))
    return seeds / np.maximum(seeds.sum(axis=0, keepdims=True), 1e-12)


def spread_labels(
    graph: PoolGraph, seeds: np.ndarray, alpha: float = 0.9, iterations: int = 30
) -> np.ndarray:
    """Label spreading: ``F <- alpha S F + (1 - alpha) Y0``, rows normalised at the end.

    Args:
        graph: The pool's graph.
        seeds: ``Y0`` from :func:`label_seeds`, shape ``(n_nodes, n_classes)``.
        alpha: How far labels travel (0.9 beat 0.5, 0.8 and 0.99 at 10-50 labels).
        iterations: Fixed-point steps; 30 leaves a change below ``alpha^30 = 4 %``.

    Returns:
        Class distribution of every node, shape ``(n_nodes, n_classes)``; a node no label
        reached gets the uniform distribution.
    """
    S = _normalised_adjacency(graph)
    F = seeds.copy()
    for _ in range(iterations):
        F = alpha * (S @ F) + (1.0 - alpha) * seeds
    total = F.sum(axis=1, keepdims=True)
    uniform = np.full_like(F, 1.0 / max(F.shape[1], 1))
    return np.where(total > 1e-12, F / np.maximum(total, 1e-12), uniform)
