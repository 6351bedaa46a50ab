"""Exports and the labels import of multi-label projects: CSV with ';'-joined tags and a
probability column per tag, JSON Lines with lists, folders refused, and the CSV read back
into another project. Real SQLite file, labels recorded through the services."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select

from labeler.annotations import image_tag_ids
from labeler.errors import LabelerError
from labeler.export import iter_csv, iter_jsonl, write_folders
from labeler.extensions import db
from labeler.label_import import import_labels
from labeler.models import Image, ImageTagScore, JobStatus, ModelRound, Project
from labeler.projects import class_by_name, create_project
from labeler.queue import submit_tags
from labeler.storage import blob_store
from labeler.users import create_user
from tests.builders import PASSWORD

TAGS = ["sea", "sky, blue", "=cmd()"]


def _project_with_images(name: str) -> tuple[Project, list[Image]]:
    project = create_project(name, TAGS, multi_label=True)
    images = [Image(project_id=project.id, sha256=f"{i:064x}", original_name=f"photo{i}.jpg",
                    format="JPEG", width=8, height=8, size_bytes=100, queue_rank=i)
              for i in range(3)]
    db.session.add_all(images)
    db.session.commit()
    return project, images


@pytest.fixture
def tagged(app):
    """Image 0 tagged sea + 'sky, blue', image 1 the empty set, image 2 not labelled; a
    round's scores and thresholds for image 0 and 2."""
    project, images = _project_with_images("coast")
    user = create_user("ann", PASSWORD, "annotator")
    submit_tags(project, images[0].id, [class_by_name(project, "sky, blue"),
                                        class_by_name(project, "sea")], user)
    submit_tags(project, images[1].id, [], user)
    for image, probabilities in ((images[0], (0.9, 0.6, 0.1)), (images[2], (0.2, 0.7, 0.5))):
        db.session.add_all(ImageTagScore(image_id=image.id, probability=p,
                                         label_class_id=class_by_name(project, tag).id)
                           for tag, p in zip(TAGS, probabilities, strict=True))
    db.session.add(ModelRound(project_id=project.id, number=1, status=JobStatus.SUCCEEDED,
                              metrics={"thresholds": {"sea": 0.5, "sky, blue": 0.65,
                                                      "=cmd()": 0.4}}))
    db.session.commit()
    return project, images


def _csv_rows(project: Project, **options) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO("".join(iter_csv(project, **options)))))


def test_csv_joins_the_tags_and_keeps_the_empty_set(tagged):
    project, images = tagged
    rows = _csv_rows(project)
    assert [(r["image_id"], r["labels"]) for r in rows] == [
        (str(images[0].id), "sea;sky, blue"), (str(images[1].id), "")]
    assert rows[1]["labelled_at"] and rows[0]["annotator"] == "ann"


def test_csv_with_predictions_has_predicted_labels_and_safe_probability_columns(tagged):
    project, images = tagged
    rows = _csv_rows(project, include_predictions=True)
    assert list(rows[0]) == ["image_id", "file_name", "sha256", "labels", "annotator",
                             "labelled_at", "predicted_labels", "p_sea", "p_sky_blue", "p_cmd"]
    by_id = {int(r["image_id"]): r for r in rows}
    assert by_id[images[0].id]["predicted_labels"] == "sea"
    assert float(by_id[images[0].id]["p_sky_blue"]) == pytest.approx(0.6)
    unlabelled = by_id[images[2].id]
    assert unlabelled["labels"] == "" and unlabelled["labelled_at"] == ""
    assert unlabelled["predicted_labels"] == "sky, blue;=cmd()"
    assert by_id[images[1].id]["p_sea"] == ""  # no score yet


def test_jsonl_has_lists_and_null_for_not_labelled(tagged):
    project, images = tagged
    lines = [json.loads(line) for line in "".join(iter_jsonl(
        project, include_predictions=True)).splitlines()]
    assert [line["labels"] for line in lines] == [["sea", "sky, blue"], [], None]
    assert lines[2]["predicted_labels"] == ["sky, blue", "=cmd()"]
    assert lines[0]["tag_probabilities"] == pytest.approx(
        {"sea": 0.9, "sky, blue": 0.6, "=cmd()": 0.1})
    plain = json.loads("".join(iter_jsonl(project)).splitlines()[0])
    assert "predicted_labels" not in plain and plain["labels"] == ["sea", "sky, blue"]


def test_the_folders_format_refuses_a_multi_label_project(tagged, tmp_path):
    project, _ = tagged
    with pytest.raises(LabelerError, match="multi-label.*export csv"):
        write_folders(project, tmp_path / "out.zip", blob_store())
    assert not (tmp_path / "out.zip").exists()


def test_the_csv_export_imports_into_another_project(tagged, tmp_path):
    project, images = tagged
    exported = tmp_path / "coast.csv"
    exported.write_text("".join(iter_csv(project, include_predictions=True)), encoding="utf-8")
    other, copies = _project_with_images("coast again")

    report = import_labels(other, exported)
    assert (report.rows, report.imported, report.unchanged) == (3, 2, 0)
    assert [why for _, why in report.bad_rows] == [
        "the image was not labelled (labelled_at is empty)"]
    names = {c.id: c.name for c in other.classes}
    current = image_tag_ids([c.id for c in copies])
    assert sorted(names[t] for t in current[copies[0].id]) == ["sea", "sky, blue"]
    db.session.expire_all()
    tagged_at = [db.session.get(Image, c.id).tagged_at for c in copies]
    assert tagged_at[0] and tagged_at[1] and tagged_at[2] is None  # [] imported as a label

    again = import_labels(other, exported)
    assert (again.imported, again.unchanged) == (0, 2)


def test_the_labels_import_command_reads_tags_and_refuses_a_label_column(tagged, tmp_path,
                                                                          runner):
    project, images = tagged
    good = tmp_path / "tags.csv"
    good.write_text(f"sha256,labels\n{images[2].sha256},=cmd(); sea\n", encoding="utf-8")
    result = runner.invoke(args=["labels", "import", "coast", str(good)])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    names = {c.id: c.name for c in project.classes}
    assert sorted(names[t] for t in image_tag_ids([images[2].id])[images[2].id]) == [
        "=cmd()", "sea"]

    wrong = tmp_path / "label.csv"
    wrong.write_text(f"sha256,label\n{images[2].sha256},sea\n", encoding="utf-8")
    result = runner.invoke(args=["labels", "import", "coast", str(wrong)])
    assert result.exit_code != 0 and "needs a 'labels' column" in result.output
    assert db.session.scalar(select(Image.tagged_at).where(Image.id == images[2].id))


def test_the_folders_export_of_a_tag_project_is_a_409_that_says_what_to_use(
        tagged, lead_client):
    """Schema-valid (format=folders) but not for this project's kind: a conflict."""
    project, _ = tagged
    response = lead_client.get(f"/api/v1/projects/{project.id}/export",
                               query_string={"format": "folders"})
    assert response.status_code == 409
    assert "export csv" in response.json["detail"]
