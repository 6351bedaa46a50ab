"""The embedding map: its JSON endpoint, its cache, and its page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

import labeler.embedding_map as embedding_map_api
from labeler.annotations import record_label
from labeler.extensions import db
from labeler.models import Image
from labeler.projects import class_by_name, create_project
from tests.builders import COLOURS, colour_image
from tests.conftest import login


def images_of(p):
    return db.session.scalars(select(Image).where(Image.project_id == p.id)
                              .order_by(Image.id)).all()


@pytest.fixture
def counted(monkeypatch):
    """Counts how often the projection is actually computed (not read from the cache)."""
    calls = []
    real = embedding_map_api.layout_2d

    def counting(matrix, **kwargs):
        calls.append(matrix.shape[0])
        return real(matrix, **kwargs)

    monkeypatch.setattr(embedding_map_api, "layout_2d", counting)
    return calls


def test_columns_are_aligned_complete_and_match_the_database(lead_client, project):
    images = images_of(project)
    red, blue = class_by_name(project, "red"), class_by_name(project, "blue")
    record_label(images[0], red)
    images[1].predicted_class_id = blue.id
    images[1].confidence = 0.9
    db.session.commit()

    response = lead_client.get(f"/api/v1/projects/{project.id}/map")

    assert response.status_code == 200 and response.mimetype == "application/json"
    data = response.json
    assert data["method"] == "pca" and not data["empty"] and len(data["explained_variance"]) == 2
    assert {c["name"]: c["colour"] for c in data["classes"]}.keys() == set(COLOURS)
    points = data["points"]
    assert set(points) == {"image_id", "x", "y", "label", "predicted"}
    assert {len(column) for column in points.values()} == {len(images)}
    assert sorted(points["image_id"]) == [i.id for i in images]  # every embedded image, once
    by_id = {i: k for k, i in enumerate(points["image_id"])}
    assert points["label"][by_id[images[0].id]] == red.id
    assert points["predicted"][by_id[images[1].id]] == blue.id
    assert points["label"][by_id[images[2].id]] == -1
    assert points["predicted"][by_id[images[2].id]] == -1
    assert all(np.isfinite(points["x"])) and all(np.isfinite(points["y"]))
    # The fake backbone embeds colour layout: the three colours form separate clusters.
    names = {i.id: Path(i.original_name).name.split("_")[0] for i in images}
    xy = np.column_stack([points["x"], points["y"]])
    colour_of = np.array([names[i] for i in points["image_id"]])
    centres = {c: xy[colour_of == c].mean(axis=0) for c in COLOURS}
    for k, c in enumerate(colour_of):
        nearest = min(centres, key=lambda name: np.linalg.norm(xy[k] - centres[name]))
        assert nearest == c


def test_projection_is_cached_and_recomputed_after_new_vectors(
        lead_client, project, counted, tmp_path):
    from labeler.importer import import_paths
    from labeler.jobs import run_inline
    from labeler.project_vectors import embed_project
    from tests import imagegen

    first = lead_client.get(f"/api/v1/projects/{project.id}/map").json
    again = lead_client.get(f"/api/v1/projects/{project.id}/map").json
    assert counted == [24] and again == first  # the reload came from the cache
    folder = embedding_map_api.cache_folder(project.id)
    assert len(list(folder.glob("*.npy"))) == 1

    imagegen.write_files(tmp_path / "more", {"red_new.png": colour_image(COLOURS["red"], 99)})
    import_paths(project, [tmp_path / "more"])
    run_inline("embed", project.id, embed_project)
    after = lead_client.get(f"/api/v1/projects/{project.id}/map").json

    assert counted == [24, 25]
    assert len(after["points"]["image_id"]) == 25
    assert len(list(folder.glob("*.npy"))) == 1  # the stale entry was replaced, not kept


def test_images_without_vectors_yet_are_left_out_and_explained(
        lead_client, project, tmp_path):
    from labeler.importer import import_paths
    from tests import imagegen

    imagegen.write_files(tmp_path / "more", {"red_new.png": colour_image(COLOURS["red"], 99)})
    import_paths(project, [tmp_path / "more"])
    data = lead_client.get(f"/api/v1/projects/{project.id}/map").json
    assert len(data["points"]["image_id"]) == 24 and data["images"] == 25
    assert "24 of 25 images" in data["message"] and "labeler embed colours" in data["message"]


def test_empty_state_before_the_first_embed(lead_client, app):
    fresh = create_project("fresh", ["cat", "dog"])
    data = lead_client.get(f"/api/v1/projects/{fresh.id}/map").json
    assert data["empty"] is True
    assert "labeler embed fresh" in data["message"]
    assert all(column == [] for column in data["points"].values())
    assert [c["name"] for c in data["classes"]] == ["cat", "dog"]
    page = lead_client.get(f"/projects/{fresh.id}/map")
    assert page.status_code == 200 and b'id="map-empty"' in page.data


def test_errors_are_json_sentences(lead_client, project):
    missing = lead_client.get("/api/v1/projects/9999/map")
    assert missing.status_code == 404 and "no project" in missing.json["detail"]
    bad = lead_client.get(f"/api/v1/projects/{project.id}/map?method=tsne")
    assert bad.status_code == 400 and "'pca'" in bad.json["detail"]


def test_umap_is_refused_with_a_hint_when_not_installed(lead_client, project, monkeypatch):
    monkeypatch.setattr(embedding_map_api, "umap_available", lambda: False)
    response = lead_client.get(f"/api/v1/projects/{project.id}/map?method=umap")
    assert response.status_code == 409 and "umap-learn" in response.json["detail"]


def test_anonymous_users_are_sent_to_log_in(client, project):
    page = client.get(f"/projects/{project.id}/map")
    assert page.status_code == 302 and "/auth/login" in page.headers["Location"]
    assert client.get(f"/api/v1/projects/{project.id}/map").status_code == 401


def test_annotators_see_the_page_with_its_script(client, annotator, project):
    login(client, annotator.username)
    page = client.get(f"/projects/{project.id}/map")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "embedding_map.js" in html and "embedding_map.css" in html
    assert f'data-detail-base="/projects/{project.id}/images/"' in html
    assert "<script>" not in html  # no inline scripts (CSP)
    assert client.get(f"/projects/{9999}/map").status_code == 404
