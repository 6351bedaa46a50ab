"""Retrain rounds, the queue and its leases, with the fake backbone (fast)."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import select

from labeler.explain import explain
from labeler.extensions import db
from labeler.importer import import_paths
from labeler.jobs import JobAlreadyRunning, create_job, run_inline
from labeler.jobs.triggers import maybe_submit_retrain
from labeler.models import Image, JobStatus, ModelRound
from labeler.project_vectors import embed_project
from labeler.projects import class_by_name
from labeler.queue import LeaseConflict, lease_next, skip, submit_label, undo
from labeler.rounds import latest_round, load_head
from labeler.training import (
    labels_until_next_round,
    run_round,
    set_training_options,
)
from labeler.users import create_user
from tests import imagegen
from tests.builders import (
    COLOURS,
    colour_image,
    embedded_colour_project,
    label,
    label_from_queue,
    true_colour,
)


@pytest.fixture
def project(app, tmp_path):
    return embedded_colour_project(tmp_path / "in", per_colour=20, seed_step=7)


@pytest.fixture
def bob(app):
    return create_user("bob", "password-2", "annotator")


def test_first_round_without_labels_ranks_the_pool_for_cold_start(project):
    job = run_inline("retrain", project.id, run_round)

    assert job.status == JobStatus.SUCCEEDED
    round_ = latest_round(project, succeeded_only=False)
    assert round_.status == "skipped" and round_.strategy == "typical"
    # The job says what it did and what is missing, not "succeeded: not trained yet".
    assert job.message == round_.message == (
        "Round 1: ranked 60 images for cold start (typical examples first); no model trained "
        "yet. No images with embeddings have labels yet; label images of at least two classes.")
    ranked = db.session.scalars(select(Image).order_by(Image.queue_rank).limit(40)).all()
    # The first picks are typical and diverse: every colour appears early.
    assert {true_colour(i) for i in ranked[:6]} == set(COLOURS)


def test_each_round_logs_its_labels_accuracy_and_duration(project, alice, caplog):
    caplog.set_level(logging.INFO, logger="labeler.training")

    label_from_queue(project, alice)  # a cold-start round, then 12 labels
    run_inline("retrain", project.id, run_round)

    lines = [re.sub(r"\d+\.\d s", "T s", r.getMessage()) for r in caplog.records
             if r.name == "labeler.training"]
    accuracy = latest_round(project).metrics["accuracy"]
    assert lines == [
        "Round 1 of project 'colours' ranked the pool for cold start in T s; no model "
        "trained yet (0 labels).",
        f"Round 2 of project 'colours' trained on 12 labels in T s: cross-validated "
        f"accuracy {accuracy:.1%}.",
    ]


def test_round_trains_measures_auto_tags_and_changes_the_queue(project, alice):
    label_from_queue(project, alice)
    before = [i.id for i in lease_next(project, alice, n=5)]

    job = run_inline("retrain", project.id, run_round)

    assert job.status == JobStatus.SUCCEEDED, job.message
    round_ = latest_round(project)
    assert round_.number == 2 and round_.n_labels == 12
    assert round_.metrics["accuracy"] > 0.8
    assert set(round_.metrics["per_class"]) == set(COLOURS)
    assert len(round_.metrics["confusion"]) == 3
    images = db.session.scalars(select(Image)).all()
    assert all(i.predicted_class_id is not None and 0 < i.confidence <= 1 for i in images)
    unlabelled = [i for i in images if i.label_class_id is None]
    correct = sum(i.predicted_class.name == true_colour(i) for i in unlabelled)
    assert correct / len(unlabelled) > 0.9
    assert all(i.queue_rank is not None for i in unlabelled)
    db.session.expire_all()
    after = [i.id for i in lease_next(project, alice, n=5)]
    assert set(before) == set(after)  # the leases she holds stay hers until she answers
    assert load_head(project) is not None


def test_queue_order_follows_the_new_round(project, alice, bob):
    run_inline("retrain", project.id, run_round)
    for image in lease_next(project, alice, n=9):
        label(project, image, alice)
    run_inline("retrain", project.id, run_round)
    head_of_queue = db.session.scalars(
        select(Image).where(Image.label_class_id.is_(None)).order_by(Image.queue_rank)).first()
    assert lease_next(project, bob, n=1)[0].id == head_of_queue.id


def test_two_annotators_never_get_the_same_image(project, alice, bob):
    a = {i.id for i in lease_next(project, alice, n=10)}
    b = {i.id for i in lease_next(project, bob, n=10)}
    assert len(a) == 10 and len(b) == 10 and not a & b


def test_expired_lease_returns_to_the_queue(project, alice, bob):
    from datetime import timedelta

    (image,) = lease_next(project, alice, n=1)
    assert image.id not in {i.id for i in lease_next(project, bob, n=3)}
    image.lease_expires_at = image.lease_expires_at - timedelta(minutes=11)
    db.session.commit()
    assert image.id in {i.id for i in lease_next(project, bob, n=4)}


def test_label_under_someone_elses_lease_is_refused(project, alice, bob):
    (image,) = lease_next(project, alice, n=1)
    with pytest.raises(LeaseConflict):
        label(project, image, bob)
    annotation = label(project, image, alice)
    assert annotation.annotator_id == alice.id
    assert db.session.get(Image, image.id).leased_to_id is None


def test_skip_sends_an_image_to_the_back(project, alice):
    (first,) = lease_next(project, alice, n=1)
    skip(project, first.id, alice)
    served = [i.id for i in lease_next(project, alice, n=5)]
    assert first.id not in served


def test_undo_restores_the_image_to_the_queue(project, alice):
    (image,) = lease_next(project, alice, n=1)
    annotation = label(project, image, alice)
    undo(annotation.id, alice)
    assert db.session.get(Image, image.id).label_class_id is None
    assert db.session.get(Image, image.id).leased_to_id == alice.id  # hers to relabel


def test_archived_class_is_refused_and_its_labels_leave_training(project, alice):
    red = class_by_name(project, "red")
    red.archived = True
    db.session.commit()
    (image,) = lease_next(project, alice, n=1)
    with pytest.raises(Exception, match="archived"):
        submit_label(project, image.id, red, alice)


def test_class_added_mid_project_joins_the_next_round(project, alice):
    from labeler.projects import add_class

    add_class(project, "purple")
    db.session.commit()
    label_from_queue(project, alice)
    job = run_inline("retrain", project.id, run_round)
    assert job.status == JobStatus.SUCCEEDED  # a class with no labels is not an error
    assert "purple" not in latest_round(project).metrics["per_class"]


def test_single_labelled_class_is_an_explained_state(project, alice):
    run_inline("retrain", project.id, run_round)
    reds = [i for i in db.session.scalars(select(Image)) if true_colour(i) == "red"][:3]
    for image in reds:
        label(project, image, alice)
    job = run_inline("retrain", project.id, run_round)
    round_ = latest_round(project, succeeded_only=False)
    assert job.status == JobStatus.SUCCEEDED and round_.status == "skipped"
    assert job.message.startswith(f"Round {round_.number}: ranked 60 images for cold start")
    assert "no model trained yet. Only one class ('red') has labels" in job.message


def test_failed_round_keeps_the_previous_one_active(project, alice, monkeypatch):
    import labeler.training as training

    label_from_queue(project, alice)
    run_inline("retrain", project.id, run_round)
    good = latest_round(project)

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(training.query, "rank_pool", broken)
    job = run_inline("retrain", project.id, run_round)

    assert job.status == JobStatus.FAILED and "disk on fire" in job.message
    failed = latest_round(project, succeeded_only=False)
    assert failed.status == "failed" and "disk on fire" in failed.message
    assert latest_round(project).id == good.id


def test_never_two_rounds_at_once(project):
    create_job("retrain", project.id, status=JobStatus.RUNNING)
    with pytest.raises(JobAlreadyRunning):
        create_job("retrain", project.id)


def test_automatic_trigger_every_n_labels(app, project, alice):
    set_training_options(project, retrain_every=5)
    assert maybe_submit_retrain(app, project) is not None  # first round: due at once
    from labeler.jobs import runner

    assert runner(app).wait_idle(60)
    db.session.expire_all()
    for count, image in enumerate(lease_next(project, alice, n=5), start=1):
        label(project, image, alice)
        assert labels_until_next_round(project) == 5 - count
    job = maybe_submit_retrain(app, project)
    assert job is not None and job.kind == "retrain"
    assert runner(app).wait_idle(60)
    assert db.session.scalar(select(ModelRound.number).order_by(ModelRound.id.desc())) == 2


def test_explain_gives_strategy_score_probabilities_and_neighbours(project, alice):
    label_from_queue(project, alice)
    run_inline("retrain", project.id, run_round)
    (image,) = lease_next(project, alice, n=1)

    reason = explain(project, image)

    assert reason["strategy"] in {"margin_diverse", "typical"}
    assert reason["score"] is not None and reason["round"] == 2
    assert len(reason["probabilities"]) == 3
    assert abs(sum(p["probability"] for p in reason["probabilities"]) - 1) < 1e-6
    assert len(reason["neighbours"]) == 3
    assert reason["neighbours"][0]["label"] == true_colour(image)


def test_retrain_cli_reports_the_round(runner, project, alice):
    label_from_queue(project, alice)
    result = runner.invoke(args=["retrain", "colours"])
    assert result.exit_code == 0, result.output
    assert "Round 2: trained on 12 labels" in result.output
    shown = runner.invoke(args=["project", "show", "colours"]).output
    assert "last round: Round 2" in shown and "embedded:   60" in shown


def test_one_labelled_class_is_named_in_the_reason(runner, project, alice):
    reds = [i for i in db.session.scalars(select(Image)) if true_colour(i) == "red"][:2]
    for image in reds:
        label(project, image, alice)
    result = runner.invoke(args=["retrain", "colours"])
    assert "Only one class ('red') has labels" in result.output


def test_project_set_validates_strategy(runner, project):
    assert runner.invoke(args=["project", "set", "colours", "--strategy", "margin",
                               "--retrain-every", "7"]).exit_code == 0
    bad = runner.invoke(args=["project", "set", "colours", "--strategy", "magic"])
    assert bad.exit_code == 1 and "Unknown strategy 'magic'" in bad.output


def test_long_rounds_pause_automatic_rounds_for_as_long_as_they_took(app, project, alice):
    from datetime import timedelta

    from labeler.jobs.triggers import ROUND_PACING_MIN_S, pacing_wait_s
    from labeler.models import utcnow

    set_training_options(project, retrain_every=1)
    run_inline("retrain", project.id, run_round)
    last = latest_round(project, succeeded_only=False)  # the cold-start round
    assert pacing_wait_s(project) == 0  # a quick round (a few ms here) is never paced

    # Pretend the round started 10 s ago and took 20 s: the pause runs until 40 s after its
    # start, so automatic rounds wait 30 more seconds even though a label is due. (The
    # wait is asked at a fixed `now`: a slow machine must not change the answer.)
    now = utcnow()
    last.duration_s = ROUND_PACING_MIN_S + 15
    last.created_at = now - timedelta(seconds=10)
    db.session.commit()
    label(project, lease_next(project, alice, n=1)[0], alice)
    assert labels_until_next_round(project) == 0
    assert pacing_wait_s(project, now=now) == pytest.approx(30.0)
    assert maybe_submit_retrain(app, project) is None

    last.created_at = utcnow() - timedelta(seconds=41)
    db.session.commit()
    assert pacing_wait_s(project) == 0
    # The process remembered the pause's end (30 s from the refusal); rewinding the clock
    # in the database doesn't move that, so forget it as the real 30 s would have.
    from labeler.cache import app_cache

    app_cache().invalidate_project(project.id)
    job = maybe_submit_retrain(app, project)
    assert job is not None and job.kind == "retrain"
    from labeler.jobs import runner

    assert runner(app).wait_idle(60)


def test_near_duplicate_groups_are_reused_until_the_vectors_change(project, alice,
                                                                    monkeypatch, tmp_path):
    from labeler import pool_derived

    calls = []
    real = pool_derived.duplicates.near_duplicate_groups

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pool_derived.duplicates, "near_duplicate_groups", counting)
    label_from_queue(project, alice)
    first = run_inline("retrain", project.id, run_round)
    groups = {i.id: i.duplicate_group for i in db.session.scalars(select(Image))}
    run_inline("retrain", project.id, run_round)
    assert first.status == "succeeded" and len(calls) == 1  # same vectors: reused
    db.session.expire_all()
    assert {i.id: i.duplicate_group for i in db.session.scalars(select(Image))} == groups

    imagegen.write_files(tmp_path / "more", {"extra.png": colour_image((220, 30, 30), 99)})
    import_paths(project, [tmp_path / "more"])
    run_inline("embed", project.id, embed_project)
    run_inline("retrain", project.id, run_round)
    assert len(calls) == 2  # new vectors: grouped again


def test_explained_neighbours_follow_labels_given_changed_and_undone_at_once(project, alice):
    label_from_queue(project, alice)
    run_inline("retrain", project.id, run_round)
    (image,) = lease_next(project, alice, n=1)
    assert image.id not in [n["image_id"] for n in explain(project, image)["neighbours"]]
    # That call built and cached the labelled index. An image is its own nearest
    # neighbour (similarity 1) once labelled: it must show at once, with its label.
    given = label(project, image, alice, name="green")
    nearest = explain(project, image)["neighbours"][0]
    assert (nearest["image_id"], nearest["label"]) == (image.id, "green")
    assert nearest["similarity"] > 0.999

    changed = label(project, image, alice, name="blue")
    assert explain(project, image)["neighbours"][0]["label"] == "blue"
    undo(changed.id, alice)
    assert explain(project, image)["neighbours"][0]["label"] == "green"
    undo(given.id, alice)
    assert image.id not in [n["image_id"] for n in explain(project, image)["neighbours"]]


def test_explain_words_the_reason_and_says_whether_a_model_was_trained(project, alice):
    run_inline("retrain", project.id, run_round)  # cold start: nothing labelled yet
    (image,) = lease_next(project, alice, n=1)
    reason = explain(project, image)
    assert (reason["strategy"], reason["round"], reason["round_trained"]) == ("typical", 1, False)
    assert reason["summary"].startswith("A typical example of a group of similar images")

    label_from_queue(project, alice)
    run_inline("retrain", project.id, run_round)
    (image,) = lease_next(project, alice, n=1)
    reason = explain(project, image)
    assert reason["round_trained"] is True and reason["strategy"] == "margin_diverse"
    first, second = (p["label"] for p in reason["probabilities"][:2])
    assert reason["summary"].startswith(f"The model is least sure between {first} (")
    assert f" and {second} (" in reason["summary"]
