"""The 2-D projection behind the embedding map (pure numpy)."""

from __future__ import annotations

import numpy as np

from labeler.learning.projection import fit_pca, layout_2d, sample_rows, transform


def blobs(n_per: int = 200, dim: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 8, size=(3, dim))
    x = np.concatenate([c + rng.normal(0, 1, size=(n_per, dim)) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(3), n_per)


def test_shape_dtype_and_explained_variance():
    x, _ = blobs()
    result = layout_2d(x)
    assert result.coords.shape == (len(x), 2) and result.coords.dtype == np.float32
    assert result.method == "pca"
    first, second = result.explained_variance
    assert 1 >= first >= second > 0 and first + second <= 1


def test_deterministic():
    x, _ = blobs()
    a, b = layout_2d(x, sample_size=100), layout_2d(x, sample_size=100)
    np.testing.assert_array_equal(a.coords, b.coords)


def test_separable_blobs_stay_separated():
    x, y = blobs()
    coords = layout_2d(x).coords
    centroids = np.stack([coords[y == k].mean(axis=0) for k in range(3)])
    spread = max(np.linalg.norm(coords[y == k] - centroids[k], axis=1).max() for k in range(3))
    gaps = [np.linalg.norm(centroids[i] - centroids[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > spread  # every blob's points are nearer its own centre than any other


def test_matches_exact_pca_up_to_sign():
    x, _ = blobs()
    coords = layout_2d(x).coords
    centred = x.astype(np.float64) - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    for k in range(2):
        assert abs(np.corrcoef(coords[:, k], expected[:, k])[0, 1]) > 0.9999


def test_float16_memmap_input(tmp_path):
    x, y = blobs()
    path = tmp_path / "vectors.f16"
    x.astype("<f2").tofile(path)
    matrix = np.memmap(path, dtype="<f2", mode="r", shape=x.shape)
    result = layout_2d(matrix, sample_size=300)
    assert result.coords.shape == (len(x), 2) and np.isfinite(result.coords).all()
    reference = layout_2d(x.astype(np.float16), sample_size=300).coords
    np.testing.assert_allclose(result.coords, reference, rtol=1e-5, atol=1e-4)


def test_chunking_equals_one_shot():
    x, _ = blobs()
    model = fit_pca(x)
    one_shot = transform(x, model, chunk_size=len(x))
    np.testing.assert_allclose(transform(x, model, chunk_size=7), one_shot, rtol=1e-6, atol=1e-5)


def test_sample_is_bounded_sorted_and_reproducible():
    rows = sample_rows(10_000, 500, seed=3)
    assert len(rows) == 500 and (np.diff(rows) > 0).all()
    np.testing.assert_array_equal(rows, sample_rows(10_000, 500, seed=3))
    np.testing.assert_array_equal(sample_rows(5, 500), np.arange(5))


def test_degenerate_inputs_give_finite_zeros():
    assert layout_2d(np.empty((0, 8), dtype=np.float16)).coords.shape == (0, 2)
    single = layout_2d(np.ones((1, 8), dtype=np.float16)).coords
    np.testing.assert_array_equal(single, np.zeros((1, 2), dtype=np.float32))
    bad = np.ones((4, 3), dtype=np.float16)
    bad[0, 0] = np.inf
    assert np.isfinite(layout_2d(bad).coords).all()
