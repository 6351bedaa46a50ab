"""Round heads on disk: plain arrays, never a pickle; old pickled heads retrain instead."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from labeler.extensions import db
from labeler.jobs import run_inline
from labeler.jobs import runner as job_runner
from labeler.jobs.scheduler import submit_due_work
from labeler.learning.head_store import (
    UnreadableHead,
    logistic_arrays,
    logistic_from_arrays,
    read_head_arrays,
    write_head_arrays,
)
from labeler.learning.heads import LogisticHead
from labeler.models import JobStatus
from labeler.rounds import (
    head_missing,
    head_path,
    latest_round,
    load_head,
    read_head,
    retire_pickled_heads,
)
from labeler.training import run_round
from tests.builders import CreatesAFile, pickled_head_arrays, trained


@pytest.mark.parametrize("classes", [np.array([3, 7, 9]), np.array(["bag", "coat"])])
def test_a_logistic_head_survives_the_round_trip_through_plain_arrays(classes):
    X, y = make_blobs(60, n_features=8, centers=len(classes), random_state=0)
    head = LogisticHead(pool_mean=X.mean(axis=0), pool_scale=X.std(axis=0)).fit(X, classes[y])
    buffer = io.BytesIO()
    write_head_arrays(buffer, "logistic", logistic_arrays(head))
    buffer.seek(0)

    kind, arrays = read_head_arrays(buffer)
    again = logistic_from_arrays(arrays)

    assert kind == "logistic" and all(a.dtype != object for a in arrays.values())
    np.testing.assert_array_equal(again.classes_, head.classes_)
    np.testing.assert_array_equal(again.predict_proba(X), head.predict_proba(X))
    assert again.get_params()["C"] == head.C


def test_a_head_file_holding_a_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "round-1.npz"
    path.write_bytes(pickled_head_arrays(marker))

    with pytest.raises(UnreadableHead, match="not a head saved as plain arrays"):
        read_head(path)
    assert not marker.exists()


def test_a_trained_round_keeps_its_head_as_arrays_only(project, alice):
    trained(project, alice)
    round_ = latest_round(project)
    path = head_path(project.id, round_.number)

    assert path.suffix == ".npz" and sorted(p.suffix for p in path.parent.iterdir()) == [".npz"]
    with np.load(path, allow_pickle=False) as stored:  # readable without unpickling
        assert str(stored["kind"]) == "logistic"
    assert isinstance(load_head(project), LogisticHead)


def test_a_round_whose_head_file_was_replaced_by_a_pickle_has_no_model(project, alice,
                                                                       tmp_path):
    trained(project, alice)
    marker = tmp_path / "ran"
    head_path(project.id, latest_round(project).number).write_bytes(pickled_head_arrays(marker))

    assert load_head(project) is None
    assert not marker.exists()


def test_an_old_pickled_head_is_never_loaded_and_its_round_retrains(app, project, alice,
                                                                    tmp_path):
    trained(project, alice)
    number = latest_round(project).number
    new_format = head_path(project.id, number)
    old_format = new_format.with_suffix(".pkl")
    marker = tmp_path / "ran"
    old_format.write_bytes(pickle.dumps(CreatesAFile(marker)))  # as an older labeler left it
    new_format.unlink()

    assert load_head(project) is None and not marker.exists()
    assert retire_pickled_heads(app.config["HOME"]) == 1  # at server start (server.prepare)
    assert not old_format.exists() and not marker.exists()
    assert head_missing(project)

    jobs = submit_due_work(app)  # the scheduler's pass: the head is derived, so retrain
    assert [(job.kind, job.project_id) for job in jobs] == [("retrain", project.id)]
    assert job_runner(app).wait_idle(60)
    assert latest_round(project).number == number + 1
    assert isinstance(load_head(project), LogisticHead)
    assert not head_missing(project) and not marker.exists()


def test_a_round_that_cannot_train_again_is_not_retried_in_a_loop(app, project, alice):
    trained(project, alice)
    head_path(project.id, latest_round(project).number).unlink()
    for label_class in project.classes[1:]:
        label_class.archived = True  # now only one class is usable: no head can be trained
    db.session.commit()
    assert head_missing(project)

    job = run_inline("retrain", project.id, run_round)

    assert job.status == JobStatus.SUCCEEDED  # a skipped round: it says what is missing
    assert not head_missing(project) and submit_due_work(app) == []
