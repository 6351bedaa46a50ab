"""Exports (csv, jsonl, folders), labels import and the export API."""

from __future__ import annotations

import copy
import csv
import io
import json
import threading
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from labeler import export
from labeler.annotations import record_label, undo_annotation
from labeler.errors import LabelerError
from labeler.extensions import db
from labeler.importer import blob_store, import_paths
from labeler.label_import import import_labels
from labeler.model_export import ExportedModel
from labeler.models import Annotation, Image
from labeler.projects import add_class, class_by_name, create_project
from labeler.users import create_api_token, create_user
from tests.builders import auth, images, label_all, label_from_queue, true_colour

# The colour project (24 images, classes red/green/blue, fake embeddings) and an
# annotator's API token, shared with the API tests.


def read_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def alice(app):
    return create_user("alice", "password-1", "annotator")


def test_csv_has_one_row_per_labelled_image(project, alice):
    label_all(project, alice, every=4)  # 6 of the 24 images

    text = "".join(export.iter_csv(project))
    rows = read_csv(text)

    assert text.splitlines()[0] == "image_id,file_name,sha256,label,annotator,labelled_at"
    assert len(rows) == 6
    by_id = {image.id: image for image in images(project)}
    for row in rows:
        image = by_id[int(row["image_id"])]  # joins the API's images by id
        assert (row["sha256"], row["file_name"]) == (image.sha256, image.original_name)
        assert row["label"] == true_colour(image)
        assert row["annotator"] == "alice"
        assert datetime.fromisoformat(row["labelled_at"]).utcoffset().total_seconds() == 0


def test_current_label_and_annotator_follow_relabel_and_undo(project, alice):
    bob = create_user("bob", "password-2", "annotator")
    image = images(project)[0]
    record_label(image, class_by_name(project, "red"), alice)
    second = record_label(image, class_by_name(project, "green"), bob)
    db.session.commit()
    (row,) = read_csv("".join(export.iter_csv(project)))
    assert (row["label"], row["annotator"]) == ("green", "bob")

    undo_annotation(second)
    db.session.commit()
    (row,) = read_csv("".join(export.iter_csv(project)))
    assert (row["label"], row["annotator"]) == ("red", "alice")


def test_predictions_add_columns_and_the_unlabelled_images(project, alice):
    label_from_queue(project, alice, n=12)
    from labeler.jobs import run_inline
    from labeler.training import run_round

    run_inline("retrain", project.id, run_round)  # predictions for every image

    rows = read_csv("".join(export.iter_csv(project, include_predictions=True)))

    assert list(rows[0]) == [*export.COLUMNS, "predicted", "confidence"]
    assert len(rows) == 24
    unlabelled = [row for row in rows if not row["label"]]
    assert len(unlabelled) == 12
    assert all(row["annotator"] == "" and row["labelled_at"] == "" for row in unlabelled)
    assert all(row["predicted"] in {"red", "green", "blue"} for row in rows)
    assert all(0 <= float(row["confidence"]) <= 1 for row in rows)
    # Without the flag: the labelled ones only, and no prediction columns.
    plain = read_csv("".join(export.iter_csv(project)))
    assert len(plain) == 12 and "predicted" not in plain[0]


def test_jsonl_matches_csv_with_nulls(project, alice):
    label_all(project, alice, every=2)

    lines = "".join(export.iter_jsonl(project, include_predictions=True)).splitlines()
    records = [json.loads(line) for line in lines]

    assert len(records) == 24
    assert set(records[0]) == {*export.COLUMNS, "predicted", "confidence"}
    assert sum(record["label"] is None for record in records) == 12
    assert all(record["annotator"] is None for record in records if record["label"] is None)
    by_id = {image.id: image.sha256 for image in images(project)}
    assert [(r["image_id"], r["sha256"]) for r in records] == sorted(by_id.items())
    labelled = [record for record in records if record["label"]]
    assert all(r["labelled_at"].endswith("+00:00") for r in labelled)  # RFC 3339, UTC
    assert {r["sha256"] for r in labelled} == {
        row["sha256"] for row in read_csv("".join(export.iter_csv(project)))}


def test_csv_and_jsonl_files_are_written_whole(project, tmp_path):
    label_all(project)
    csv_path = export.write_csv(project, tmp_path / "out" / "labels.csv")
    jsonl_path = export.write_jsonl(project, tmp_path / "out" / "labels.jsonl")
    assert len(read_csv(csv_path.read_text())) == 24
    assert len(jsonl_path.read_text().splitlines()) == 24
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["labels.csv", "labels.jsonl"]


def test_folders_zip_has_one_folder_per_class_with_the_original_bytes(project, tmp_path):
    label_all(project)
    store = blob_store()

    result = export.write_folders(project, tmp_path / "out" / "dataset.zip", store)

    assert result.images == 24 and result.per_folder == {"red": 8, "green": 8, "blue": 8}
    by_sha = {image.sha256[:12]: image for image in images(project)}
    with zipfile.ZipFile(result.path) as archive:
        files = [name for name in archive.namelist() if not name.endswith("/")]
        assert len(files) == 24 == len(set(files))
        for name in files:
            folder, file_name = name.split("/")
            image = by_sha[file_name.rsplit("_", 1)[1].removesuffix(".png")]
            assert folder == true_colour(image)
            assert file_name.startswith(Path(image.original_name).stem)
            assert archive.read(name) == store.read_image(image.sha256, image.format)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["dataset.zip"]


def test_val_split_is_stratified_deterministic_and_keeps_every_class_folder(project, tmp_path):
    label_all(project)
    store = blob_store()

    first = export.write_folders(project, tmp_path / "a.zip", store, val_split=0.25)
    second = export.write_folders(project, tmp_path / "b", store, val_split=0.25)

    assert first.per_folder == {f"{split}/{colour}": n for colour in ("red", "green", "blue")
                                for split, n in (("train", 6), ("val", 2))}
    with zipfile.ZipFile(first.path) as archive:
        zipped = sorted(n for n in archive.namelist() if not n.endswith("/"))
    on_disk = sorted(str(p.relative_to(second.path)) for p in second.path.rglob("*.png"))
    assert zipped == on_disk  # same split in a zip and a directory, run after run

    add_class(project, "purple")  # a class without images still gets train/ and val/ folders
    db.session.commit()
    third = export.write_folders(project, tmp_path / "c", store, val_split=0.2)
    assert (third.path / "val" / "purple").is_dir() and (third.path / "train" / "purple").is_dir()
    assert third.per_folder["val/red"] == 1 and third.per_folder["train/red"] == 7


def test_class_folder_names_are_safe(project, tmp_path):
    shirt = add_class(project, "T-shirt/top")
    record_label(images(project)[0], shirt)
    db.session.commit()

    result = export.write_folders(project, tmp_path / "out", blob_store())

    assert result.per_folder == {"T-shirt-top": 1}
    assert export.safe_name("../..") == "unnamed" and export.safe_name("a\\b:c") == "a-b-c"


def test_a_failed_export_leaves_nothing_under_the_final_name(project, tmp_path, monkeypatch):
    label_all(project)
    calls = []

    def broken(store, row):
        calls.append(row)
        if len(calls) == 5:
            raise OSError("disk full")
        return store.image_path(row.sha256, row.format)

    monkeypatch.setattr(export, "_image_bytes_or_path", broken)
    for out in (tmp_path / "out" / "x.zip", tmp_path / "out" / "x"):
        calls.clear()
        with pytest.raises(OSError):
            export.write_folders(project, out, blob_store())
    assert list((tmp_path / "out").iterdir()) == []


def test_an_existing_directory_is_not_overwritten(project, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(LabelerError, match="not an empty directory"):
        export.write_folders(project, tmp_path / "out", blob_store())
    with pytest.raises(LabelerError, match="between 0 and 1"):
        export.write_folders(project, tmp_path / "y.zip", blob_store(), val_split=1.5)


def test_export_is_one_snapshot_while_labelling_goes_on(app, project, monkeypatch):
    monkeypatch.setattr(export, "BATCH_ROWS", 1)  # fetch row by row: the statement stays open
    rows = export.iter_rows(project, include_unlabelled=True)
    first = next(rows)
    project_id = project.id

    def label_everything():
        with app.app_context():
            proj = db.session.get(type(project), project_id)
            red = class_by_name(proj, "red")
            for image in db.session.scalars(select(Image).where(Image.project_id == project_id)):
                record_label(image, red)
            db.session.commit()
            db.session.remove()

    writer = threading.Thread(target=label_everything)
    writer.start()
    writer.join()
    rest = list(rows)

    assert [first, *rest] and len(rest) == 23
    assert all(row.label is None for row in [first, *rest])  # the state when it began
    assert db.session.scalar(select(Annotation.id).limit(1)) is not None
    assert all(row.label == "red" for row in export.iter_rows(project))


def test_csv_round_trip_into_a_fresh_project(project, alice, tmp_path):
    label_all(project, alice, every=2)
    class_by_name(project, "blue")
    path = export.write_csv(project, tmp_path / "labels.csv")

    fresh = create_project("copy")
    import_paths(fresh, [tmp_path / "in"])  # the same image files
    report = import_labels(fresh, path, create_classes=True)

    assert report.imported == 12 and not report.unmatched and not report.bad_rows
    assert sorted(report.created_classes) == ["blue", "green", "red"]

    def labels(p):
        return {image.sha256: image.label_class.name if image.label_class else None
                for image in images(p)}

    assert labels(fresh) == labels(project)
    history = db.session.scalars(select(Annotation).where(Annotation.project_id == fresh.id))
    assert {(a.source, a.annotator_id) for a in history} == {("import", None)}
    again = import_labels(fresh, path)
    assert again.imported == 0 and again.unchanged == 12


def test_import_by_basename_reports_unmatched_unknown_and_bad_rows(project):
    image = images(project)[0]
    rows = [f"folder/{image.original_name},{true_colour(image)}", "x.png,",  ",red"]
    rows += [f"missing_{i}.png,red" for i in range(25)]
    rows += [f"{images(project)[1].original_name},purple"]
    text = "name,label\n" + "\n".join(rows) + "\n"

    refused = import_labels(project, io.StringIO(text))
    assert refused.refused and refused.unknown_classes == {"purple": 1}
    assert refused.imported == 0 and images(project)[0].label_class_id is None
    assert len(refused.unmatched) == 25 and refused.unmatched[0] == (5, "missing_0.png")
    assert [line for line, _ in refused.bad_rows] == [3, 4]
    lines = refused.lines()
    assert "Matched no image (first 20 of 25):" in lines
    assert sum(line.startswith("  line ") for line in lines) == 22  # 20 unmatched + 2 bad

    created = import_labels(project, io.StringIO(text), create_classes=True)
    assert created.imported == 2 and created.created_classes == ["purple"]
    assert images(project)[1].label_class.name == "purple"

    with pytest.raises(LabelerError, match="'label' column"):
        import_labels(project, io.StringIO("file,class\na.png,red\n"))


def test_cli_export_and_labels_import(runner, project, tmp_path, monkeypatch):
    label_all(project, every=3)
    out = tmp_path / "labels.csv"
    result = runner.invoke(args=["export", "colours", "--format", "csv", "--out", str(out),
                                 "--include-predictions"])
    assert result.exit_code == 0, result.output
    assert len(read_csv(out.read_text())) == 24

    result = runner.invoke(args=["export", "colours", "--format", "folders", "--out",
                                 str(tmp_path / "ds.zip"), "--val-split", "0.5"])
    assert result.exit_code == 0, result.output
    assert "8 images in 6 folders" in result.output

    monkeypatch.setattr(export, "model_exporter", lambda: None)
    result = runner.invoke(args=["export", "colours", "--format", "model", "--out",
                                 str(tmp_path / "m.keras")])
    assert result.exit_code == 1 and "not available" in result.output
    written = []

    def fake_export(p, path):
        written.append((p.name, path))
        return ExportedModel(path, 3, 24, 0.8125)

    monkeypatch.setattr(export, "model_exporter", lambda: fake_export)
    result = runner.invoke(args=["export", "colours", "--format", "model", "--out",
                                 str(tmp_path / "m.keras")])
    assert result.exit_code == 0 and written == [("colours", tmp_path / "m.keras")]
    assert (f"Exported round 3 (trained on 24 labels, cross-validated accuracy 81.2%) to "
            f"{tmp_path / 'm.keras'}") in result.output

    (tmp_path / "new.csv").write_text("file_name,label\nnope.png,red\nred_1.png,mauve\n")
    result = runner.invoke(args=["labels", "import", "colours", str(tmp_path / "new.csv")])
    assert result.exit_code == 1
    assert "line 2: nope.png" in result.output and "'mauve' (1 rows)" in result.output
    assert "--create-classes" in result.output
    result = runner.invoke(args=["labels", "import", "colours", str(tmp_path / "new.csv"),
                                 "--create-classes"])
    assert result.exit_code == 0 and "1 labels imported" in result.output


def test_api_downloads_for_leads_only(app, lead_client, project, token, monkeypatch):
    label_all(project)
    url = f"/api/v1/projects/{project.id}/export"

    response = lead_client.get(f"{url}?format=csv&include_predictions=1")
    assert response.status_code == 200 and response.is_streamed is True
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"  # charset once
    assert response.headers["Content-Disposition"] == 'attachment; filename="colours.csv"'
    assert len(read_csv(response.text)) == 24

    response = lead_client.get(f"{url}?format=jsonl")
    assert response.mimetype == "application/x-ndjson" and len(response.text.splitlines()) == 24

    response = lead_client.get(f"{url}?format=folders&val_split=0.25")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "colours-folders.zip" in response.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert sum(n.startswith("val/") and not n.endswith("/") for n in archive.namelist()) == 6

    for query, detail in (("format=pdf", "'format' should be 'csv', 'jsonl'"),
                          ("format=folders&val_split=2", "'val_split' should be less than 1")):
        response = lead_client.get(f"{url}?{query}")
        assert response.status_code == 400 and detail in response.json["detail"]
    response = lead_client.get(f"{url}?format=model")  # no trained round: a sentence, no 500
    assert response.status_code == 409 and response.json["detail"].endswith(".")
    assert not any((Path(app.config["HOME"]) / "tmp").iterdir())  # scratch folder removed
    monkeypatch.setattr(export, "model_exporter", lambda: None)
    response = lead_client.get(f"{url}?format=model")
    assert response.status_code == 409 and "not available" in response.json["detail"]

    fresh = app.test_client()  # no session cookie: the bearer token decides who calls
    assert fresh.get(f"{url}?format=csv", headers=auth(token)).status_code == 403
    lead_token = create_api_token(create_user("lucy", "password-123", "lead"))
    assert fresh.get(f"{url}?format=csv", headers=auth(lead_token)).status_code == 200
    assert lead_client.get("/api/v1/projects/999/export?format=csv").status_code == 404


@pytest.mark.integration
def test_folders_load_with_keras_image_dataset_from_directory(project, tmp_path):
    import keras

    label_all(project)
    store = blob_store()
    plain = export.write_folders(project, tmp_path / "plain", store)
    split = export.write_folders(project, tmp_path / "split", store, val_split=0.25)

    dataset = keras.utils.image_dataset_from_directory(plain.path, image_size=(32, 32),
                                                       batch_size=8, shuffle=False)
    assert dataset.class_names == ["blue", "green", "red"]
    assert sum(int(labels.shape[0]) for _, labels in dataset) == 24
    for name, expected in (("train", 18), ("val", 6)):
        part = keras.utils.image_dataset_from_directory(split.path / name, image_size=(32, 32))
        assert part.class_names == ["blue", "green", "red"]
        assert sum(int(labels.shape[0]) for _, labels in part) == expected


def test_unreadable_csv_is_a_sentence(project, tmp_path):
    (tmp_path / "bad.csv").write_bytes(b"file_name,label\n\xff\xfe\x00bad,red\n")
    with pytest.raises(LabelerError, match="UTF-8"):
        import_labels(project, tmp_path / "bad.csv")
    with pytest.raises(LabelerError, match="Cannot read"):
        import_labels(project, tmp_path / "missing.csv")


def test_min_precision_exports_only_the_auto_tags_above_their_class_threshold(
        runner, project, alice, tmp_path):
    from labeler.jobs import run_inline
    from labeler.rounds import latest_round
    from labeler.training import run_round

    label_from_queue(project, alice, n=12)
    run_inline("retrain", project.id, run_round)
    round_ = latest_round(project)
    table = copy.deepcopy(round_.metrics["precision_thresholds"])  # a change SQLAlchemy sees
    assert set(table["0.95"]) == {str(c.id) for c in project.classes}
    # Known thresholds: red's auto-tags need 0.9 (a cut through them), green's none, blue
    # is never precise enough.
    ids = {c.name: str(c.id) for c in project.classes}
    table["0.95"] = {ids["red"]: 0.9, ids["green"]: 0.0, ids["blue"]: None}
    round_.metrics = {**round_.metrics, "precision_thresholds": table}
    db.session.commit()
    tags = read_csv("".join(export.iter_csv(project, include_predictions=True)))
    for row in tags:  # make red's confidences straddle 0.9
        if not row["label"] and row["predicted"] == "red":
            image = db.session.scalar(select(Image).where(Image.sha256 == row["sha256"]))
            image.confidence = 0.95 if image.id % 2 else 0.85
    db.session.commit()

    out = tmp_path / "tags.csv"
    result = runner.invoke(args=["export", "colours", "--format", "csv", "--out", str(out),
                                 "--min-precision", "0.95"])

    assert result.exit_code == 0, result.output
    rows = read_csv(out.read_text())
    all_rows = read_csv("".join(export.iter_csv(project, include_predictions=True)))
    assert [r for r in rows if r["label"]] == [r for r in all_rows if r["label"]]
    auto = [r for r in rows if not r["label"]]
    expected = [r for r in all_rows if not r["label"] and (
        r["predicted"] == "green" or (r["predicted"] == "red" and float(r["confidence"]) >= 0.9))]
    assert auto == expected
    assert {r["predicted"] for r in all_rows if not r["label"]} >= {"red"}
    assert not any(r["predicted"] == "blue" for r in auto)


def test_min_precision_needs_a_measured_round(runner, project, tmp_path):
    result = runner.invoke(args=["export", "colours", "--format", "csv", "--out",
                                 str(tmp_path / "x.csv"), "--min-precision", "0.95"])
    assert result.exit_code != 0 and "No round has measured its precision" in result.output
    result = runner.invoke(args=["export", "colours", "--format", "folders", "--out",
                                 str(tmp_path / "x"), "--min-precision", "0.95"])
    assert result.exit_code != 0 and "csv or jsonl" in result.output
