"""The embed job with a fake backbone: resumable, incremental, per-space, reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from labeler.embeddings import register_backbone
from labeler.extensions import db
from labeler.importer import blob_store, import_paths
from labeler.jobs import run_inline
from labeler.jobs import runner as job_runner
from labeler.models import Image, JobStatus
from labeler.project_vectors import (
    current_vectors,
    embed_project,
    embedding_counts,
    set_project_backbone,
)
from labeler.projects import create_project
from tests import imagegen
from tests.fakes import FAKE_BACKBONE, FakeBackbone


@pytest.fixture
def fake(app):
    backbone = FakeBackbone()
    register_backbone(FAKE_BACKBONE, lambda cache_dir: backbone)
    return backbone


@pytest.fixture
def project(app, fake, tmp_path):
    project = create_project("p", ["a", "b"], backbone=FAKE_BACKBONE)
    folder = tmp_path / "in"
    imagegen.write_files(folder, {
        f"{i}.png": imagegen.encode(PILImage.fromarray(imagegen.gradient(64, 48, seed=i)), "PNG")
        for i in range(10)})
    import_paths(project, [folder])
    return project


def test_embed_stores_one_vector_per_image(project, fake):
    job = run_inline("embed", project.id, embed_project, batch_size=4)

    assert job.status == JobStatus.SUCCEEDED, job.message
    assert "Embedded 10 images" in job.message
    store = current_vectors(project)
    assert sorted(store.image_ids().tolist()) == sorted(
        i.id for i in db.session.query(Image).all())
    assert store.matrix().shape == (10, 48)
    assert embedding_counts(project) == (10, 10)


def test_rerun_embeds_only_new_images(project, fake, tmp_path):
    run_inline("embed", project.id, embed_project)
    imagegen.write_files(tmp_path / "more", {"new.png": imagegen.encode(
        PILImage.fromarray(imagegen.gradient(64, 48, seed=99)), "PNG")})
    import_paths(project, [tmp_path / "more"])

    job = run_inline("embed", project.id, embed_project)

    assert fake.calls == [10, 1] and "Embedded 1 images" in job.message
    assert embedding_counts(project) == (11, 11)


def test_crash_half_way_then_rerun_finishes_without_duplicates(project, fake):
    fake.fail_after = 2
    crashed = run_inline("embed", project.id, embed_project, batch_size=3)
    assert crashed.status == JobStatus.FAILED
    assert embedding_counts(project) == (6, 10)  # two whole batches are kept

    fake.fail_after = None
    run_inline("embed", project.id, embed_project, batch_size=3)

    ids = current_vectors(project).image_ids()
    assert len(ids) == 10 and len(np.unique(ids)) == 10


def test_unreadable_file_is_reported_and_others_embedded(project, fake):
    victim = db.session.query(Image).first()
    blob_store().image_path(victim.sha256, victim.format).unlink()

    job = run_inline("embed", project.id, embed_project)

    assert job.status == JobStatus.SUCCEEDED
    assert "1 could not be read" in job.message and f"image {victim.id}" in job.message
    assert embedding_counts(project) == (9, 10)


def test_switching_backbone_starts_a_new_space(project, fake):
    run_inline("embed", project.id, embed_project)
    other = FakeBackbone(spec=FakeBackbone().spec.__class__("other-fake", "2", 16, 48))
    register_backbone("other-fake", lambda cache_dir: other)

    set_project_backbone(project, "other-fake")
    assert embedding_counts(project) == (0, 10)
    run_inline("embed", project.id, embed_project)

    assert current_vectors(project).space.backbone == "other-fake"
    assert embedding_counts(project) == (10, 10)


def test_similar_images_get_similar_vectors(project, fake, tmp_path):
    # A slightly brighter copy of image 0: the job must store it nearer its original than
    # any other image is (the real backbone: tests/integration/test_embedding_job.py).
    near = np.clip(imagegen.gradient(64, 48, seed=0).astype(int) + 4, 0, 255).astype(np.uint8)
    imagegen.write_files(tmp_path / "near", {
        "near.png": imagegen.encode(PILImage.fromarray(near), "PNG")})
    import_paths(project, [tmp_path / "near"])
    run_inline("embed", project.id, embed_project)
    store = current_vectors(project)
    vectors = store.matrix().astype(np.float32)
    assert np.isfinite(vectors).all() and vectors.std() > 0

    by_name = {Path(image.original_name).name: image.id for image in db.session.query(Image)}
    original = store.vectors_for([by_name["0.png"]])[0]
    others = store.vectors_for([i for name, i in by_name.items() if name != "0.png"])
    distances = np.linalg.norm(others - original, axis=1)
    nearest = [name for name in by_name if name != "0.png"][int(np.argmin(distances))]
    assert nearest == "near.png"
    assert distances.min() < 0.5 * np.sort(distances)[1]  # clearly nearer, not by a hair


def test_server_embeds_new_images_then_ranks_them_for_cold_start(app, project, fake):
    from labeler.jobs.scheduler import submit_due_work
    from labeler.rounds import latest_round

    jobs = submit_due_work(app)
    assert [(job.kind, job.project_id) for job in jobs] == [("embed", project.id)]
    assert job_runner(app).wait_idle(60)
    db.session.expire_all()
    assert embedding_counts(project) == (10, 10)
    # The embed job queued the first round: a cold-start ranking with no labels needed.
    assert job_runner(app).wait_idle(60)
    db.session.expire_all()
    assert latest_round(project, succeeded_only=False).status == "skipped"
    assert submit_due_work(app) == []  # nothing left to do


def test_embed_cli_prints_summary(runner, project, fake):
    result = runner.invoke(args=["embed", "p", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert "Embedded 10 images with fake-colour-layout" in result.output


def test_embed_cli_unknown_backbone_is_a_clear_error(runner, app):
    create_project("q", backbone="no-such-backbone")
    imagegen_dir = app.config["HOME"].parent / "q"
    imagegen.write_files(imagegen_dir, {"x.png": imagegen.format_zoo()["alpha.png"]})
    runner.invoke(args=["import", "q", str(imagegen_dir)])
    result = runner.invoke(args=["embed", "q"])
    assert result.exit_code == 1 and "Unknown backbone 'no-such-backbone'" in result.output
