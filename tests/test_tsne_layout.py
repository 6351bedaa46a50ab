"""The t-SNE layout behind the embedding map (labeler.learning.projection, openTSNE)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.manifold import trustworthiness
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from labeler.learning.projection import MIN_TSNE_ROWS, Projection, layout_2d


def tsne_layout(matrix: np.ndarray, **kwargs) -> Projection:
    return layout_2d(matrix, "tsne", **kwargs)


def project(matrix: np.ndarray) -> Projection:
    return layout_2d(matrix, "pca")


def clusters(k: int = 12, per: int = 30, noise: float = 0.6, seed: int = 0
             ) -> tuple[np.ndarray, np.ndarray]:
    """``k`` Gaussian clusters in 64 dimensions; two principal components mix some of them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, size=(k, 64))
    y = np.repeat(np.arange(k), per)
    return (centres[y] + rng.normal(0, noise, size=(len(y), 64))).astype(np.float32), y


def neighbour_accuracy(coords: np.ndarray, y: np.ndarray) -> float:
    """Share of points whose 5 nearest map neighbours vote for their own cluster."""
    return float(cross_val_score(KNeighborsClassifier(5), coords, y, cv=5).mean())


@pytest.fixture(scope="module")
def layout() -> tuple[np.ndarray, np.ndarray, Projection]:
    x, y = clusters()
    return x, y, tsne_layout(x)


def test_tsne_keeps_clusters_apart_where_pca_mixes_them(layout) -> None:
    x, y, result = layout
    assert result.method == "tsne"
    assert result.coords.shape == (len(x), 2) and result.coords.dtype == np.float32
    assert result.explained_variance == []
    pca = project(x)
    assert neighbour_accuracy(result.coords, y) >= 0.95
    assert neighbour_accuracy(pca.coords, y) < 0.85
    assert trustworthiness(x, result.coords, n_neighbors=10) > trustworthiness(
        x, pca.coords, n_neighbors=10) + 0.05


def test_the_same_seed_gives_the_same_layout(layout) -> None:
    x, _, result = layout
    np.testing.assert_array_equal(tsne_layout(x).coords, result.coords)
    assert not np.array_equal(tsne_layout(x, seed=1).coords, result.coords)


def test_rows_beyond_fit_rows_are_placed_by_transform(layout) -> None:
    x, y, _ = layout
    result = tsne_layout(x, fit_rows=150)
    assert result.method == "tsne" and np.isfinite(result.coords).all()
    # Placed rows land among the fitted rows of their own cluster.
    fitted = np.zeros(len(x), dtype=bool)
    fitted[np.sort(np.random.default_rng(0).choice(len(x), 150, replace=False))] = True
    knn = KNeighborsClassifier(5).fit(result.coords[fitted], y[fitted])
    assert knn.score(result.coords[~fitted], y[~fitted]) >= 0.95


def test_fewer_rows_than_tsne_neighbours_still_get_a_layout() -> None:
    # 20 rows: fewer than the 90 neighbours perplexity 30 asks for; perplexity shrinks.
    x, y = clusters(k=2, per=10, noise=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = tsne_layout(x)
    assert result.method == "tsne" and np.isfinite(result.coords).all()
    assert neighbour_accuracy(result.coords, y) == 1.0


def test_too_few_rows_or_no_spread_fall_back_to_pca() -> None:
    x, _ = clusters(k=1, per=MIN_TSNE_ROWS - 1)
    result = tsne_layout(x)
    assert result.method == "pca" and result.coords.shape == (MIN_TSNE_ROWS - 1, 2)
    assert len(result.explained_variance) == 2
    same = tsne_layout(np.ones((40, 16), dtype=np.float16))
    assert same.method == "pca" and not same.coords.any()
    assert tsne_layout(np.empty((0, 16), dtype=np.float16)).coords.shape == (0, 2)


def test_a_float16_memory_map_with_bad_rows(tmp_path) -> None:
    x, _ = clusters(k=3, per=20)
    path = tmp_path / "vectors.f16"
    stored = np.memmap(path, dtype=np.float16, mode="w+", shape=x.shape)
    stored[:] = x
    stored[0, 0] = np.inf  # a float16 overflow
    stored[1] = np.nan
    stored.flush()
    result = tsne_layout(np.memmap(path, dtype=np.float16, mode="r", shape=x.shape))
    assert result.method == "tsne" and np.isfinite(result.coords).all()


def test_bad_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="rows, dim"):
        tsne_layout(np.zeros(12))
    with pytest.raises(ValueError, match="fit_rows must be at least"):
        tsne_layout(np.zeros((20, 4)), fit_rows=5)
    with pytest.raises(ValueError, match="Unknown projection method 'umap'"):
        layout_2d(np.zeros((20, 4)), "umap")


def test_a_layout_loads_neither_tensorflow_nor_numba() -> None:
    # Only labeler.embeddings may load TensorFlow (umap-learn would); numba would need a
    # writable cache directory and compile at first use (openTSNE's automatic neighbour
    # search imports pynndescent, and so numba, just to see whether it is installed).
    code = (
        "import sys, numpy as np\n"
        "from labeler.learning.projection import layout_2d\n"
        "x = np.random.default_rng(0).normal(size=(1000, 8))\n"
        "assert layout_2d(x, 'tsne').method == 'tsne'\n"
        "print(sorted(m for m in ('tensorflow', 'numba', 'pynndescent', 'umap')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    assert done.stdout.strip() == "[]"
