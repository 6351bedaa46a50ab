"""The whole loop with the real backbone: import -> embed -> label via the queue -> rounds."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from labeler.embeddings import DEFAULT_BACKBONE, register_backbone
from labeler.extensions import db
from labeler.importer import import_paths
from labeler.jobs import runner, triggers
from labeler.jobs.scheduler import submit_due_work
from labeler.jobs.triggers import maybe_submit_retrain
from labeler.models import Image, ModelRound
from labeler.projects import class_by_name, create_project
from labeler.queue import lease_next, submit_label
from labeler.training import set_training_options
from labeler.users import create_user
from tests import imagegen

pytestmark = pytest.mark.integration

DIGITS = {0: "zero", 1: "one", 7: "seven"}


@pytest.fixture
def digits_folder(tmp_path):
    """Real hand-written digits that ship with scikit-learn, as PNG files per class."""
    return imagegen.digits_folder(tmp_path / "digits", DIGITS, per_class=25)


def test_labelling_through_the_queue_triggers_rounds_that_reorder_and_auto_tag(
        app, backbone, digits_folder, monkeypatch):
    # Pacing (a pause after a round slower than 5 s) is tested on its own; on a loaded
    # machine a round of 75 images can take that long and would pause this test's rounds.
    monkeypatch.setattr(triggers, "ROUND_PACING_MIN_S", float("inf"))
    register_backbone(DEFAULT_BACKBONE, lambda cache_dir: backbone)
    project = create_project("digits", list(DIGITS.values()))
    set_training_options(project, retrain_every=10)
    assert import_paths(project, [digits_folder]).imported == 75
    truth = {i.id: i.original_name.split("/")[-2] for i in db.session.scalars(select(Image))}
    annotator = create_user("ann", "password-123")

    # The server's scheduler: embed, then the first (cold-start) round by itself.
    submit_due_work(app)
    assert runner(app).wait_idle(300)
    db.session.expire_all()
    rounds = db.session.scalars(select(ModelRound)).all()
    assert [r.status for r in rounds] == ["skipped"]  # ranked for cold start, no labels

    orders = []
    for _ in range(3):
        orders.append([i.id for i in db.session.scalars(
            select(Image).where(Image.label_class_id.is_(None)).order_by(Image.queue_rank)
            .limit(10))])
        for image in lease_next(project, annotator, n=10):
            submit_label(project, image.id, class_by_name(project, truth[image.id]), annotator)
        assert maybe_submit_retrain(app, project) is not None  # every 10 labels
        assert runner(app).wait_idle(120)
        db.session.expire_all()

    rounds = db.session.scalars(select(ModelRound).order_by(ModelRound.number)).all()
    assert [r.n_labels for r in rounds] == [0, 10, 20, 30]
    assert all(r.status == "succeeded" for r in rounds[1:]), [r.message for r in rounds]
    assert orders[0] != orders[1] != orders[2]  # each round changed the queue
    # Cold start picked every class within the first 10 labels.
    first_ten = {truth[i] for i in orders[0]}
    assert first_ten == set(DIGITS.values())
    images = db.session.scalars(select(Image)).all()
    assert all(i.predicted_class_id is not None and i.confidence is not None for i in images)
    unlabelled = [i for i in images if i.label_class_id is None]
    accuracy = np.mean([i.predicted_class.name == truth[i.id] for i in unlabelled])
    assert accuracy > 0.85, accuracy
    assert rounds[-1].metrics["accuracy"] > 0.8
