"""A project's saved vector index: kept up to date, rebuilt after a crash, used by the app."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from labeler.embeddings import register_backbone
from labeler.errors import LabelerError
from labeler.explain import explain
from labeler.extensions import db
from labeler.importer import import_paths
from labeler.jobs import run_inline
from labeler.models import Image
from labeler.project_index import (
    index_path,
    manifest_path,
    project_duplicate_threshold,
    update_index,
)
from labeler.project_vectors import current_vectors, embed_project
from labeler.projects import create_project
from labeler.queue import lease_next
from labeler.training import run_round
from tests import imagegen
from tests.builders import colour_image, embedded_colour_project, label
from tests.fakes import FAKE_BACKBONE, FakeBackbone


@pytest.fixture
def project(app, tmp_path):
    return embedded_colour_project(tmp_path / "in", per_colour=12, seed_step=5)


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_embed_job_saves_an_index_of_every_row_and_adds_new_rows(project, tmp_path):
    store = current_vectors(project)
    assert index_path(store).exists() and manifest_path(store).exists()
    assert len(update_index(store)) == len(store) == 36

    imagegen.write_files(tmp_path / "more", {"extra.png": colour_image((220, 30, 30), 99)})
    import_paths(project, [tmp_path / "more"])
    run_inline("embed", project.id, embed_project)

    index = update_index(store)
    assert len(index) == len(store) == 37
    # The new row is found at its own position in the store.
    found, _ = index.search(store.matrix()[36:37], 1)
    assert found[0, 0] == 36


@pytest.mark.parametrize("damage", ["cut short", "garbage", "no manifest", "bytes changed"])
def test_a_damaged_index_is_rebuilt_from_the_vectors(project, damage, caplog):
    store = current_vectors(project)
    path = index_path(store)
    whole = path.read_bytes()
    if damage == "cut short":  # a crash while writing, had the write not been atomic
        path.write_bytes(whole[: len(whole) // 2])
    elif damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(len(whole)))
    elif damage == "no manifest":
        manifest_path(store).unlink()
    else:  # same size, bytes of the last stored row flipped: only the checksum sees it
        at = len(whole) - 16
        path.write_bytes(whole[:at] + bytes(b ^ 0xFF for b in whole[at : at + 8])
                         + whole[at + 8 :])
    caplog.set_level(logging.WARNING, logger="labeler.project_index")

    index = update_index(store)

    assert len(index) == len(store)
    found, cosine = index.search(store.matrix()[:5], 1)
    assert found[:, 0].tolist() == [0, 1, 2, 3, 4] and (cosine[:, 0] > 0.99).all()
    assert path.read_bytes() == whole  # the same index again, saved
    if damage != "no manifest":
        assert "Rebuilding the vector index" in caplog.text


def _exact_groups(vectors: np.ndarray, threshold: float) -> set[frozenset[int]]:
    """Near-duplicate groups by comparing every pair: what the index must reproduce."""
    unit = _unit(vectors)
    close = unit @ unit.T >= threshold
    groups, seen = set(), set()
    for start in range(len(unit)):
        if start in seen or close[start].sum() < 2:
            continue
        members, frontier = {start}, [start]
        while frontier:
            row = frontier.pop()
            for other in np.flatnonzero(close[row]).tolist():
                if other not in members:
                    members.add(other)
                    frontier.append(other)
        seen |= members
        groups.add(frozenset(members))
    return groups


def _grid(cells: np.ndarray, seed: int) -> bytes:
    """A 64 x 48 image of 4 x 4 coloured cells (what the fake backbone sees), with noise."""
    pixels = np.kron(cells, np.ones((12, 16, 1))) + np.random.default_rng(seed).normal(
        0, 2, size=(48, 64, 3))
    return imagegen.encode(PILImage.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), "PNG")


@pytest.fixture
def grids(app, tmp_path):
    """40 images of random 4 x 4 colour grids, the first 8 twice (near-duplicates)."""
    register_backbone(FAKE_BACKBONE, lambda cache_dir: FakeBackbone())
    project = create_project("grids", ["a", "b"], backbone=FAKE_BACKBONE)
    rng = np.random.default_rng(7)
    cells = rng.uniform(0, 255, size=(40, 4, 4, 3))
    files = {f"{'ab'[i % 2]}_{i}.png": _grid(cells[i], i) for i in range(40)}
    files |= {f"{'ab'[i % 2]}_{i}_copy.png": _grid(cells[i], 100 + i) for i in range(8)}
    imagegen.write_files(tmp_path / "grids", files)
    import_paths(project, [tmp_path / "grids"])
    run_inline("embed", project.id, embed_project)
    return project


def test_duplicate_groups_and_nearest_labelled_match_a_full_comparison(grids, alice):
    project = grids
    for image in db.session.scalars(select(Image).order_by(Image.id).limit(30)):
        if image.id % 3:  # 20 labels, the copies' originals among them
            label(project, image, alice, image.original_name.rsplit("/", 1)[-1][0])
    run_inline("retrain", project.id, run_round)

    store = current_vectors(project)
    ids, vectors = store.image_ids(), store.vectors_for(store.image_ids())
    images = {i.id: i for i in db.session.scalars(select(Image))}
    by_group: dict[int, set[int]] = {}
    for row, image_id in enumerate(ids.tolist()):
        if images[image_id].duplicate_group is not None:
            by_group.setdefault(images[image_id].duplicate_group, set()).add(row)
    expected = _exact_groups(vectors, 0.95)
    assert len(expected) == 8 and all(len(g) == 2 for g in expected)  # the copies
    assert {frozenset(g) for g in by_group.values()} == expected

    (image,) = lease_next(project, alice, n=1)
    neighbours = explain(project, image)["neighbours"]
    labelled = np.array([images[i].label_class_id is not None for i in ids.tolist()])
    scores = _unit(vectors[labelled]) @ _unit(store.vectors_for([image.id]))[0]
    best = np.argsort(-scores, kind="stable")[:3]
    assert [n["image_id"] for n in neighbours] == ids[labelled][best].tolist()
    np.testing.assert_allclose([n["similarity"] for n in neighbours], scores[best], atol=1e-5)


@pytest.mark.parametrize("value", [0, 1.5, "high", None])
def test_a_threshold_outside_0_to_1_is_refused_with_a_sentence(value):
    with pytest.raises(LabelerError, match="must be a cosine similarity above 0 and at most 1"):
        project_duplicate_threshold({"duplicate_threshold": value})
    assert project_duplicate_threshold({}) == 0.95
    assert project_duplicate_threshold({"duplicate_threshold": "0.9"}) == 0.9
