"""The faiss indexes behind near-duplicates and "nearest labelled", on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from labeler.learning.duplicates import groups_from_pairs, verified_pairs
from labeler.learning.vector_index import ExactIndex, IndexFileError, PoolIndex


def _rows(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float16)


def test_pool_index_names_rows_by_position_and_finds_each_row_first() -> None:
    rows = _rows(3000, 64, 1)
    index = PoolIndex(64)
    index.add(rows[:1000])
    index.add(rows[1000:])  # appended later: positions continue
    assert len(index) == 3000

    found, cosine = index.search(rows[[5, 2500]], 3)

    assert found[:, 0].tolist() == [5, 2500]
    np.testing.assert_allclose(cosine[:, 0], 1.0, atol=2e-3)
    assert (cosine[:, 1] < 0.7).all()  # random 64-d rows are far apart


def test_close_pairs_finds_a_copy_and_verification_keeps_only_true_pairs() -> None:
    rows = _rows(2000, 64, 2)
    rows[1500] = rows[42] * np.float16(3)  # same direction, other length: cosine 1
    index = PoolIndex(64)
    index.add(rows)

    a, b = index.close_pairs(rows, 0.95)
    a, b = verified_pairs(rows, a, b, 0.95)

    assert sorted({(int(x), int(y)) for x, y in zip(a, b, strict=True)}) == [(42, 1500),
                                                                              (1500, 42)]
    groups = groups_from_pairs(len(rows), a, b)
    assert groups[42] == groups[1500] == 0 and (groups >= 0).sum() == 2


def test_a_saved_index_reads_back_the_same(tmp_path) -> None:
    rows = _rows(500, 32, 3)
    index = PoolIndex(32)
    index.add(rows)
    index.save(tmp_path / "pool.faiss")

    again = PoolIndex.load(tmp_path / "pool.faiss", 32)

    assert len(again) == 500
    np.testing.assert_array_equal(again.search(rows[:20], 5)[0], index.search(rows[:20], 5)[0])


def test_cut_short_garbage_or_foreign_index_files_are_refused(tmp_path) -> None:
    index = PoolIndex(32)
    index.add(_rows(500, 32, 4))
    whole = tmp_path / "pool.faiss"
    index.save(whole)
    cut = tmp_path / "cut.faiss"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    garbage = tmp_path / "garbage.faiss"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))

    for path, dim in ((cut, 32), (garbage, 32), (whole, 64), (tmp_path / "none.faiss", 32)):
        with pytest.raises(IndexFileError):
            PoolIndex.load(path, dim)


def test_exact_index_answers_what_a_full_scan_answers() -> None:
    rows = _rows(4000, 48, 5).astype(np.float32)
    ids = np.arange(4000) * 10 + 7
    index = ExactIndex(ids, rows)
    query = _rows(1, 48, 6)[0].astype(np.float32)

    found, cosine = index.search(query, 5)

    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    scores = unit @ (query / np.linalg.norm(query))
    best = np.argsort(-scores)[:5]
    assert found.tolist() == ids[best].tolist()
    np.testing.assert_allclose(cosine, scores[best], atol=1e-5)


def test_an_empty_exact_index_finds_nothing() -> None:
    index = ExactIndex(np.empty(0, np.int64), np.empty((0, 8), np.float32))
    found, cosine = index.search(np.ones(8, np.float32), 3)
    assert len(index) == 0 and found.shape == cosine.shape == (0,)
