"""Rounds of multi-label projects: tag heads trained on image_tag, per-tag scores and
thresholds written, the set confidence, the queue ranked, heads saved and restored.
Real SQLite file, images imported and embedded with the fake backbone."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from labeler.backup import backup_project
from labeler.errors import LabelerError
from labeler.extensions import db
from labeler.jobs import run_inline
from labeler.models import Image, ImageTagScore, JobStatus, ModelRound
from labeler.projects import class_by_name, get_project
from labeler.queue import submit_tags
from labeler.restore import restore_project
from labeler.rounds import load_head
from labeler.tag_sets import tag_fields
from labeler.training import run_round, set_training_options
from labeler.users import create_api_token, create_user
from tests.builders import (
    PASSWORD,
    auth,
    embedded_colour_project,
    everyone_joins,
    images,
    true_colour,
)


@pytest.fixture
def tags_project(app, tmp_path):
    return embedded_colour_project(tmp_path / "in", per_colour=6, seed_step=3,
                                   multi_label=True)


def _tag_some(project, per_colour: int = 4) -> list[int]:
    user = create_user("ann", PASSWORD, "annotator")
    seen: dict[str, int] = {}
    tagged = []
    for image in images(project):
        colour = true_colour(image)
        if seen.get(colour, 0) < per_colour:
            seen[colour] = seen.get(colour, 0) + 1
            submit_tags(project, image.id, [class_by_name(project, colour)], user)
            tagged.append(image.id)
    return tagged


def _latest_round(project) -> ModelRound:
    return db.session.scalar(select(ModelRound).where(ModelRound.project_id == project.id)
                             .order_by(ModelRound.number.desc()).limit(1))


def test_a_round_without_tags_ranks_the_pool_for_cold_start(tags_project):
    assert run_inline("retrain", tags_project.id, run_round).status == JobStatus.SUCCEEDED
    round_ = _latest_round(tags_project)
    assert round_.status == "skipped" and "No images with embeddings have tags" in round_.message
    ranks = db.session.scalars(select(Image.queue_rank)
                               .where(Image.project_id == tags_project.id)).all()
    assert sorted(ranks) == list(range(18))
    assert db.session.scalar(select(func.count()).select_from(ImageTagScore)) == 0


def test_a_trained_round_scores_every_tag_of_every_image_and_ranks_the_rest(tags_project):
    tagged = _tag_some(tags_project)
    job = run_inline("retrain", tags_project.id, run_round)
    assert job.status == JobStatus.SUCCEEDED, job.message
    round_ = _latest_round(tags_project)
    assert round_.status == JobStatus.SUCCEEDED and round_.n_labels == 12
    metrics = round_.metrics
    assert metrics["kind"] == "multi_label" and set(metrics["thresholds"]) == {
        "red", "green", "blue"}
    assert metrics["micro_f1"] > 0.9 and metrics["map"] > 0.9  # colours are easy
    assert set(metrics["per_tag"]["red"]) >= {"precision", "recall", "f1",
                                              "average_precision", "threshold", "support"}
    assert "micro-F1" in round_.message

    assert db.session.scalar(select(func.count()).select_from(ImageTagScore)) == 18 * 3
    db.session.expire_all()
    pool = images(tags_project)
    assert all(image.predicted_class_id is None and 0 <= image.confidence <= 1
               for image in pool)
    unlabelled = [image for image in pool if image.id not in tagged]
    assert sorted(image.queue_rank for image in unlabelled) == list(range(6))
    assert all(image.queue_rank is None for image in pool if image.id in tagged)
    fields = tag_fields(tags_project, unlabelled)
    for image in unlabelled:  # every unlabelled image is auto-tagged with its colour
        assert fields[image.id]["predicted_labels"] == [true_colour(image)]
    head = load_head(tags_project)
    assert head is not None and list(head.tags_) == [c.id for c in tags_project.classes]


def test_next_images_explain_with_the_tag_heads(tags_project, client):
    _tag_some(tags_project)
    run_inline("retrain", tags_project.id, run_round)
    token = create_api_token(create_user("bea", PASSWORD, "annotator"))
    everyone_joins()
    items = client.get(f"/api/v1/projects/{tags_project.id}/next?n=3",
                       headers=auth(token)).json["items"]
    assert len(items) == 3
    for item in items:
        assert set(item["tag_probabilities"]) == {"red", "green", "blue"}
        assert len(item["predicted_labels"]) == 1
        assert {p["label"] for p in item["reason"]["probabilities"]} <= {"red", "green",
                                                                         "blue"}


def test_tag_strategies_are_the_choices_of_a_multi_label_project(tags_project):
    set_training_options(tags_project, strategy="tag_entropy")
    with pytest.raises(LabelerError, match="multi-label project"):
        set_training_options(tags_project, strategy="margin")
    _tag_some(tags_project)
    run_inline("retrain", tags_project.id, run_round)
    assert _latest_round(tags_project).strategy == "tag_entropy"


def test_a_trained_tag_project_restores_with_its_head(tags_project, tmp_path):
    _tag_some(tags_project)
    run_inline("retrain", tags_project.id, run_round)
    archive = tmp_path / "tags.zip"
    backup_project("colour tags", archive)
    report = restore_project(archive, "copy")
    assert report.counts["heads"] == 1 and not report.skipped_heads
    copy = get_project("copy")
    head = load_head(copy)
    assert list(head.tags_) == [c.id for c in copy.classes]
    assert _latest_round(copy).metrics["tags"] == [c.id for c in copy.classes]


def test_stats_and_dashboard_show_the_tag_metrics_and_curve(tags_project, client, lead):
    _tag_some(tags_project)
    run_inline("retrain", tags_project.id, run_round)
    headers = auth(create_api_token(lead))
    stats = client.get(f"/api/v1/projects/{tags_project.id}/stats", headers=headers)
    assert stats.status_code == 200, stats.json
    active = stats.json["active_round"]
    assert active["kind"] == "multi_label" and active["accuracy"] is None
    assert set(active["per_tag"]) == set(active["thresholds"]) == {"red", "green", "blue"}
    assert active["micro_f1"] > 0.9 and active["cardinality"] == 1.0
    dashboard = client.get(f"/api/v1/projects/{tags_project.id}/dashboard", headers=headers)
    assert dashboard.status_code == 200, dashboard.json
    (point,) = dashboard.json["curve"]
    assert point["accuracy"] is None and point["micro_f1"] > 0.9 and point["map"] > 0.9
    assert {c["name"]: c["labelled"] for c in dashboard.json["classes"]} == {
        "red": 4, "green": 4, "blue": 4}
    assert sum(c["predicted"] for c in dashboard.json["classes"]) == 6
