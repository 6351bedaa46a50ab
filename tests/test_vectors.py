"""The append-only, memory-mapped embedding matrix."""

from __future__ import annotations

import numpy as np
import pytest

from labeler.vectors import EmbeddingSpace, VectorStore

SPACE = EmbeddingSpace("efficientnet-lite0", "1", 224, 8)


def test_append_then_read_back_as_one_memmap(tmp_path):
    store = VectorStore(tmp_path, 1, SPACE)
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(5, 8)), rng.normal(size=(3, 8))
    with store.writer() as writer:
        writer.append([10, 11, 12, 13, 14], first)
        writer.append([20, 21, 22], second)

    matrix = store.matrix()
    assert isinstance(matrix, np.memmap) and matrix.dtype == np.float16
    assert matrix.shape == (8, 8) and len(store) == 8
    np.testing.assert_allclose(store.vectors_for([21, 10]), np.stack([second[1], first[0]]),
                               atol=1e-2)
    assert store.rows_for([22, 99]).tolist() == [7, -1]


def test_reembedded_image_uses_its_latest_row(tmp_path):
    store = VectorStore(tmp_path, 1, SPACE)
    with store.writer() as writer:
        writer.append([1, 2], np.zeros((2, 8)))
        writer.append([1], np.ones((1, 8)))
    assert store.rows_for([1]).tolist() == [2]


def test_a_torn_tail_is_invisible_and_cut_by_the_next_writer(tmp_path):
    store = VectorStore(tmp_path, 1, SPACE)
    with store.writer() as writer:
        writer.append([1, 2], np.ones((2, 8)))
    # A crash after writing part of the next batch's vectors, before its ids.
    with open(store.vectors_path, "ab") as handle:
        handle.write(b"\x01" * 21)
    assert len(store) == 2 and store.matrix().shape == (2, 8)

    with store.writer() as writer:
        writer.append([3], np.full((1, 8), 3.0))
    assert store.image_ids().tolist() == [1, 2, 3]
    assert store.vectors_for([3])[0, 0] == 3.0
    assert store.vectors_path.stat().st_size == 3 * 8 * 2


def test_spaces_of_different_backbones_are_separate_files(tmp_path):
    other = EmbeddingSpace("MobileNetV3Small", "keras-3", 224, 8)
    a, b = VectorStore(tmp_path, 1, SPACE), VectorStore(tmp_path, 1, other)
    with a.writer() as writer:
        writer.append([1], np.ones((1, 8)))
    assert len(a) == 1 and len(b) == 0 and a.vectors_path != b.vectors_path
    assert '"backbone": "efficientnet-lite0"' in a.meta_path.read_text()


def test_bad_vectors_are_refused(tmp_path):
    store = VectorStore(tmp_path, 1, SPACE)
    with store.writer() as writer:
        with pytest.raises(ValueError, match="dim"):
            writer.append([1], np.ones((1, 7)))
        with pytest.raises(ValueError, match="NaN"):
            writer.append([1], np.full((1, 8), np.nan))
    assert len(store) == 0

