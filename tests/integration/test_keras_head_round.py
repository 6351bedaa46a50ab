"""A retrain round with the Keras dense head (the transfer-learning classification layer)."""

from __future__ import annotations

import pytest

from labeler.jobs import run_inline
from labeler.models import JobStatus
from labeler.rounds import latest_round, load_head
from labeler.training import run_round, set_training_options
from tests.builders import embedded_colour_project, label_from_queue

pytestmark = pytest.mark.integration


@pytest.fixture
def project(app, tmp_path):
    """The colour project with 20 images of each colour (as tests/test_training.py)."""
    return embedded_colour_project(tmp_path / "in", per_colour=20, seed_step=7)


def test_round_with_keras_dense_head_trains_saves_and_reloads(project, alice):
    set_training_options(project, head="keras_dense")
    label_from_queue(project, alice)

    job = run_inline("retrain", project.id, run_round)

    assert job.status == JobStatus.SUCCEEDED, job.message
    round_ = latest_round(project)
    assert round_.metrics["trained"] and round_.metrics["accuracy"] > 0.7
    head = load_head(project)
    assert type(head).__name__ == "KerasDenseHead" and hasattr(head, "model_")
