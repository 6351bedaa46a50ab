"""The export page's model, with the real backbone: built by the job, downloaded, loaded."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from labeler.embeddings import DEFAULT_BACKBONE, register_backbone
from labeler.extensions import db
from labeler.importer import import_paths
from labeler.jobs import run_inline, runner
from labeler.jobs.kinds import JobKind
from labeler.models import Image, Job, JobStatus
from labeler.project_vectors import embed_project
from labeler.projects import class_by_name, create_project
from labeler.queue import lease_next, submit_label
from labeler.training import run_round
from tests import imagegen

pytestmark = pytest.mark.integration

DIGITS = {0: "zero", 1: "one", 7: "seven"}


def test_a_lead_builds_and_downloads_a_model_keras_loads(app, lead_client, lead, backbone,
                                                          tmp_path):
    import keras

    register_backbone(DEFAULT_BACKBONE, lambda cache_dir: backbone)
    project = create_project("digits", list(DIGITS.values()))
    import_paths(project, [imagegen.digits_folder(tmp_path / "digits", DIGITS, per_class=8)])
    assert run_inline("embed", project.id, embed_project).status == JobStatus.SUCCEEDED
    truth = {i.id: i.original_name.split("/")[-2] for i in db.session.scalars(select(Image))}
    given = dict.fromkeys(DIGITS.values(), 0)
    for image in lease_next(project, lead, n=len(truth)):  # 4 labels of each class
        if given[truth[image.id]] < 4:
            submit_label(project, image.id, class_by_name(project, truth[image.id]), lead)
            given[truth[image.id]] += 1
    assert run_inline("retrain", project.id, run_round).status == JobStatus.SUCCEEDED

    response = lead_client.post(f"/projects/{project.id}/export/model")
    assert response.status_code == 303
    assert runner(app).wait_idle(300)
    job = db.session.scalars(select(Job).where(Job.kind == JobKind.EXPORT)).one()
    assert job.status == JobStatus.SUCCEEDED, job.message
    page = lead_client.get(f"/projects/{project.id}/export").text
    assert "Download the model of round 1" in page and "cross-validated accuracy" in page

    response = lead_client.get(f"/projects/{project.id}/export/model.keras")
    assert response.status_code == 200
    path = tmp_path / "downloaded.keras"
    path.write_bytes(response.data)
    model = keras.models.load_model(path)  # safe mode: built-in layers only
    assert sorted(model.get_layer("label").get_vocabulary()) == sorted(DIGITS.values())
    out = model.predict(np.full((2, 64, 64, 3), 128, dtype="float32"), verbose=0)
    assert out["probabilities"].shape == (2, 3)
