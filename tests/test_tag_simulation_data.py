"""Reading multi-label data for ``labeler simulate``: 0/1 arrays and CSVs of file,tags."""

from __future__ import annotations

import numpy as np
import pytest

from labeler.errors import LabelerError
from labeler.learning.simulation import load_tag_arrays, load_tag_csv, split_tag_pool


def test_a_csv_of_files_and_tags_becomes_a_tag_matrix(tmp_path):
    path = tmp_path / "tags.csv"
    # The CSV export's own columns: file_name, and labels joined by ';'. Empty = no tags.
    path.write_text("image_id,file_name,labels\n1,a.jpg,sea;sky\n2,b.jpg,\n3,c.jpg, sunset ;sea\n")

    files, Y, tags = load_tag_csv(path)

    assert files == ["a.jpg", "b.jpg", "c.jpg"]
    assert tags == ["sea", "sky", "sunset"]
    np.testing.assert_array_equal(Y, [[1, 1, 0], [0, 0, 0], [1, 0, 1]])


def test_a_csv_without_the_columns_says_which_it_needs(tmp_path):
    path = tmp_path / "tags.csv"
    path.write_text("path,classes\na.jpg,sea\n")
    with pytest.raises(LabelerError, match="a file column .* and a tag column"):
        load_tag_csv(path)


def test_tag_arrays_must_be_zero_one_with_a_row_per_embedding(tmp_path):
    np.save(tmp_path / "ok.npy", np.array([[1, 0], [0, 0]]))
    np.save(tmp_path / "short.npy", np.array([[1, 0]]))
    assert load_tag_arrays(tmp_path / "ok.npy", 2).dtype == np.uint8
    with pytest.raises(LabelerError, match="one row of tags per embedding row"):
        load_tag_arrays(tmp_path / "short.npy", 2)


def test_the_split_is_seeded_and_disjoint():
    pool, held_out = split_tag_pool(30, seed=3)
    again = split_tag_pool(30, seed=3)
    assert len(held_out) == 10 and not set(pool) & set(held_out)
    np.testing.assert_array_equal(pool, again[0])
