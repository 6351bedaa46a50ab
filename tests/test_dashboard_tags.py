"""The dashboard's payload of a multi-label project: per-tag quality and the F1/mAP curve."""

from __future__ import annotations

from sqlalchemy import select

from labeler.annotations import record_tags
from labeler.embeddings import register_backbone
from labeler.extensions import db
from labeler.importer import import_paths
from labeler.jobs import run_inline
from labeler.models import Image, JobStatus
from labeler.project_vectors import embed_project
from labeler.projects import create_project
from labeler.training import run_round
from tests import imagegen
from tests.builders import COLOURS, colour_image, trained
from tests.fakes import FAKE_BACKBONE, FakeBackbone

TAGS = ["red", "green", "blue"]


def tagged_rounds(tmp_path, lead):
    """A multi-label project of colour images, all tagged, and two real rounds."""
    register_backbone(FAKE_BACKBONE, lambda cache_dir: FakeBackbone())
    project = create_project("tags", TAGS, multi_label=True, backbone=FAKE_BACKBONE)
    files = {f"{name}_{i}.png": colour_image(rgb, seed=i * 5 + k)
             for k, (name, rgb) in enumerate(COLOURS.items()) for i in range(6)}
    imagegen.write_files(tmp_path / "in", files)
    import_paths(project, [tmp_path / "in"])
    assert run_inline("embed", project.id, embed_project).status == JobStatus.SUCCEEDED
    classes = {c.name: c for c in project.classes}
    images = db.session.scalars(select(Image).where(Image.project_id == project.id)
                                .order_by(Image.id)).all()
    for share in (2, 1):  # every other image first, then all of them
        for image in images[::share]:
            colour = image.original_name.rsplit("/", 1)[-1].split("_")[0]
            # Two thirds of the red images are also tagged blue: two tags on some images.
            tags = [colour] + (["blue"] if colour == "red" and image.id % 3 else [])
            record_tags(image, [classes[t] for t in tags], lead)
        db.session.commit()
        assert run_inline("retrain", project.id, run_round).status == JobStatus.SUCCEEDED
    return project


def test_dashboard_of_a_tag_project_has_per_tag_quality_and_f1_map_curve(
        app, tmp_path, lead, lead_client):
    project = tagged_rounds(tmp_path, lead)
    board = lead_client.get(f"/api/v1/projects/{project.id}/dashboard").json
    curve = board["curve"]
    assert len(curve) == 2 and [p["n_labels"] for p in curve] == [9, 18]
    for point in curve:
        assert point["accuracy"] is None
        assert all(0 <= point[k] <= 1 for k in ("micro_f1", "macro_f1", "map"))
    latest = board["latest_round"]
    assert latest["kind"] == "multi_label"
    assert sorted(latest["per_tag"]) == sorted(TAGS)
    assert set(latest["per_tag"]["blue"]) == {"precision", "recall", "f1",
                                                "average_precision", "threshold", "support"}
    assert latest["thresholds"] == {t: latest["per_tag"][t]["threshold"] for t in TAGS}
    assert 1 < latest["cardinality"] < 2 and latest["micro_f1"] == curve[-1]["micro_f1"]
    stats = lead_client.get(f"/api/v1/projects/{project.id}/stats").json
    assert stats["active_round"]["kind"] == "multi_label"


def test_single_label_rounds_keep_their_shape(lead_client, project, annotator):
    trained(project, annotator)
    board = lead_client.get(f"/api/v1/projects/{project.id}/dashboard").json
    assert "kind" not in board["latest_round"] and "per_tag" not in board["latest_round"]
    assert board["curve"] and all("micro_f1" not in p for p in board["curve"])


def test_the_strategy_choice_follows_the_projects_kind(app, lead, lead_client):
    from labeler.learning.tag_query import TAG_STRATEGIES
    from tests.builders import csrf

    tags = create_project("kinds-tags", TAGS, multi_label=True)
    classes = create_project("kinds-classes", TAGS)
    board = lead_client.get(f"/api/v1/projects/{tags.id}/dashboard").json
    assert [s["name"] for s in board["settings"]["strategies"]] == list(TAG_STRATEGIES)
    assert "tag" in next(s["help"] for s in board["settings"]["strategies"]
                         if s["name"] == "auto")
    page = lead_client.get(f"/projects/{tags.id}/dashboard").text
    assert 'value="tag_entropy"' in page and 'value="margin"' not in page

    def choose(project, strategy):
        return lead_client.post(f"/api/v1/projects/{project.id}/settings",
                                headers=csrf(lead_client, project), json={"strategy": strategy})

    assert choose(tags, "tag_entropy").status_code == 200
    refused = choose(tags, "margin")  # a single-label strategy
    assert refused.status_code == 409
    assert "for a multi-label project; choose one of auto" in refused.json["detail"]
    assert choose(classes, "tag_entropy").status_code == 409
    assert choose(classes, "margin").status_code == 200
