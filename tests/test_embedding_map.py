"""The embedding map: its JSON endpoint, its cache, its t-SNE layout job, and its page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

import labeler.embedding_map as embedding_map_api
from labeler.annotations import record_label
from labeler.extensions import db
from labeler.jobs import JobKind, runner
from labeler.models import Image, Job, JobStatus
from labeler.projects import class_by_name, create_project
from tests.builders import COLOURS, colour_image, embedded_colour_project
from tests.conftest import login


@pytest.fixture(autouse=True)
def _layout_jobs_finish(app):
    """Opening the map queues its t-SNE layout on the app's job thread: let it finish
    before the test's data directory goes."""
    yield
    assert runner(app).wait_idle(120)


def images_of(p):
    return db.session.scalars(select(Image).where(Image.project_id == p.id)
                              .order_by(Image.id)).all()


@pytest.fixture
def counted(monkeypatch):
    """Counts how often PCA is actually computed (not read from the cache)."""
    calls = []
    real = embedding_map_api.layout_2d

    def counting(matrix, method, **kwargs):
        if method == "pca":
            calls.append(matrix.shape[0])
        return real(matrix, method, **kwargs)

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
    assert data["tsne"] == "computing"  # PCA is shown until the t-SNE layout is ready
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

    first = lead_client.get(f"/api/v1/projects/{project.id}/map?method=pca").json
    again = lead_client.get(f"/api/v1/projects/{project.id}/map?method=pca").json
    assert counted == [24] and again == first  # the reload came from the cache
    folder = embedding_map_api.cache_folder(project.id)
    assert len(list(folder.glob("*_pca_*.npy"))) == 1

    imagegen.write_files(tmp_path / "more", {"red_new.png": colour_image(COLOURS["red"], 99)})
    import_paths(project, [tmp_path / "more"])
    run_inline("embed", project.id, embed_project)
    after = lead_client.get(f"/api/v1/projects/{project.id}/map?method=pca").json

    assert counted == [24, 25]
    assert len(after["points"]["image_id"]) == 25
    assert len(list(folder.glob("*_pca_*.npy"))) == 1  # the stale entry was replaced


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
    for method in ("umap", "tsne"):  # t-SNE is what 'auto' serves once it is ready
        bad = lead_client.get(f"/api/v1/projects/{project.id}/map?method={method}")
        assert bad.status_code == 400 and "'auto'" in bad.json["detail"]


# --- the t-SNE layout ----------------------------------------------------------------------


def map_jobs(project) -> list[Job]:
    db.session.expire_all()
    return db.session.scalars(select(Job).where(Job.project_id == project.id,
                                                Job.kind == JobKind.MAP)
                              .order_by(Job.id)).all()


def separated_by_colour(data, project) -> bool:
    """Whether every point lies nearest to the centre of its own colour's points."""
    names = {i.id: Path(i.original_name).name.split("_")[0] for i in images_of(project)}
    xy = np.column_stack([data["points"]["x"], data["points"]["y"]])
    colour_of = np.array([names[i] for i in data["points"]["image_id"]])
    centres = {c: xy[colour_of == c].mean(axis=0) for c in COLOURS}
    return all(min(centres, key=lambda name: np.linalg.norm(xy[k] - centres[name])) == c
               for k, c in enumerate(colour_of))


def test_tsne_replaces_pca_once_its_job_has_run(app, lead_client, project):
    # 24 images: fewer than the 90 neighbours t-SNE's usual perplexity asks for.
    url = f"/api/v1/projects/{project.id}/map"
    before = lead_client.get(url).json
    assert (before["method"], before["tsne"]) == ("pca", "computing")
    assert [j.status for j in map_jobs(project)] in (
        [JobStatus.QUEUED], [JobStatus.RUNNING], [JobStatus.SUCCEEDED])

    assert runner(app).wait_idle(120)
    after = lead_client.get(url).json

    assert (after["method"], after["tsne"]) == ("tsne", "ready")
    assert after["explained_variance"] == [] and after["tsne_message"] == ""
    assert sorted(after["points"]["image_id"]) == sorted(before["points"]["image_id"])
    assert after["points"]["x"] != before["points"]["x"]
    assert separated_by_colour(after, project)
    assert [j.status for j in map_jobs(project)] == [JobStatus.SUCCEEDED]  # none queued again
    assert "Laid out 24 images by t-SNE" in map_jobs(project)[0].message
    assert lead_client.get(f"{url}?method=pca").json["method"] == "pca"


def test_new_vectors_queue_a_new_layout(app, lead_client, project, tmp_path):
    from labeler.importer import import_paths
    from labeler.jobs import run_inline
    from labeler.jobs.pipelines import embed_then_round
    from tests import imagegen

    url = f"/api/v1/projects/{project.id}/map"
    lead_client.get(url)
    assert runner(app).wait_idle(120)
    imagegen.write_files(tmp_path / "more", {"red_new.png": colour_image(COLOURS["red"], 99)})
    import_paths(project, [tmp_path / "more"])
    run_inline("embed", project.id, embed_then_round)  # what the server runs after an import
    assert runner(app).wait_idle(120)

    data = lead_client.get(url).json
    assert (data["method"], data["tsne"]) == ("tsne", "ready")
    assert len(data["points"]["image_id"]) == 25
    assert [j.status for j in map_jobs(project)] == [JobStatus.SUCCEEDED] * 2


def test_a_failed_layout_says_why_and_is_tried_again_later(
        app, lead_client, project, monkeypatch):
    import labeler.jobs.map_layouts as map_layouts

    real = embedding_map_api.layout_2d

    def broken(matrix, method, **kwargs):
        if method == "tsne":
            raise MemoryError("no room for t-SNE")
        return real(matrix, method, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(embedding_map_api, "layout_2d", broken)
        url = f"/api/v1/projects/{project.id}/map"
        assert lead_client.get(url).json["tsne"] == "computing"
        assert runner(app).wait_idle(120)
    data = lead_client.get(url).json

    assert (data["method"], data["tsne"]) == ("pca", "failed")
    assert "no room for t-SNE" in data["tsne_message"]
    assert len(map_jobs(project)) == 1  # not queued again on every reload
    monkeypatch.setattr(map_layouts, "RETRY_FAILED_AFTER", map_layouts.timedelta(0))
    assert lead_client.get(url).json["tsne"] == "computing"
    assert runner(app).wait_idle(120)
    assert lead_client.get(url).json["method"] == "tsne"


def test_too_few_images_for_tsne_keep_pca_and_say_so(app, lead_client, tmp_path):
    few = embedded_colour_project(tmp_path / "few", per_colour=3, seed_step=5)  # 9 images
    url = f"/api/v1/projects/{few.id}/map"
    data = lead_client.get(url).json
    assert (data["method"], data["tsne"]) == ("pca", "unavailable")
    assert map_jobs(few) == []  # nothing to compute


def test_a_damaged_cache_entry_is_computed_again(app, lead_client, project):
    url = f"/api/v1/projects/{project.id}/map"
    lead_client.get(url)
    assert runner(app).wait_idle(120)
    for entry in embedding_map_api.cache_folder(project.id).glob("*_tsne_*.npy"):
        entry.write_bytes(b"not an array")
    assert lead_client.get(url).json["tsne"] == "computing"
    assert runner(app).wait_idle(120)
    assert lead_client.get(url).json["method"] == "tsne"


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
