"""`labeler backup` / `labeler restore`: round trips, damaged archives, live snapshots."""

from __future__ import annotations

import hashlib
import json
import pickle
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from labeler import create_app
from labeler.backup import backup_project
from labeler.database import upgrade_database
from labeler.errors import LabelerError
from labeler.extensions import db
from labeler.importer import blob_store
from labeler.jobs import run_inline
from labeler.models import Annotation, Image, JobStatus, ModelRound, Project, User
from labeler.project_vectors import current_vectors
from labeler.projects import class_by_name, create_project, get_project
from labeler.queue import lease_next, skip, submit_label, undo
from labeler.restore import restore_project
from labeler.review import submit_review
from labeler.rounds import head_missing, latest_round, load_head
from labeler.training import run_round
from labeler.users import authenticate, create_api_token, create_user
from tests.builders import (
    COLOURS,
    CreatesAFile,
    embedded_colour_project,
    everyone_joins,
    pickled_head_arrays,
    true_colour,
)
from tests.conftest import PASSWORD
from tests.dbutil import database_config


@pytest.fixture
def project(app, tmp_path, lead, annotator):
    """24 embedded images; cold-start round, 12 labels (one relabel, one undone), a trained
    round, and a skipped image."""
    project = embedded_colour_project(tmp_path / "in", per_colour=8, seed_step=3)
    run_inline("retrain", project.id, run_round)
    for user in (annotator, lead):
        for image in lease_next(project, user, n=6):
            submit_label(project, image.id, class_by_name(project, true_colour(image)), user)
    relabelled = db.session.scalars(select(Annotation).where(
        Annotation.annotator_id == lead.id).order_by(Annotation.id)).first()
    submit_label(project, relabelled.image_id, class_by_name(project, "blue"), lead)
    undone = db.session.scalars(select(Annotation).where(
        Annotation.annotator_id == annotator.id).order_by(Annotation.id)).first()
    undo(undone.id, lead)  # a lead undoes the annotator's label: the history says who
    reviewed = db.session.scalars(select(Annotation).where(
        Annotation.annotator_id == annotator.id, Annotation.undone_at.is_(None))
        .order_by(Annotation.id)).first()
    submit_review(project, reviewed.id, lead, class_by_name(project, "green"))
    assert run_inline("retrain", project.id, run_round).status == JobStatus.SUCCEEDED
    skip(project, lease_next(project, annotator, n=1)[0].id, annotator)
    return project


def describe(name: str) -> dict:
    """Everything a restore must keep, keyed by names instead of database ids."""
    project = get_project(name)
    classes = {c.id: c.name for c in project.classes}
    images = db.session.scalars(select(Image).where(Image.project_id == project.id)
                                .order_by(Image.id)).all()
    files = {i.id: i.original_name for i in images}
    store = current_vectors(project)
    history = db.session.execute(
        select(Annotation, User.username).outerjoin(User, User.id == Annotation.annotator_id)
        .where(Annotation.project_id == project.id).order_by(Annotation.id)).all()
    names = dict(db.session.execute(select(User.id, User.username)).all())
    position = {a.id: n for n, (a, _) in enumerate(history)}  # reviews name a position
    rounds = db.session.scalars(select(ModelRound).where(ModelRound.project_id == project.id)
                                .order_by(ModelRound.number)).all()
    head = load_head(project)
    blobs = blob_store()
    return {
        "classes": [(c.name, c.key, c.colour, c.position, c.archived) for c in project.classes],
        "settings": project.settings,
        "images": {i.original_name: (i.sha256, i.format, i.width, i.height, i.size_bytes,
                                     classes.get(i.label_class_id),
                                     classes.get(i.predicted_class_id), i.confidence,
                                     i.prediction_round, i.suspected_error,
                                     blobs.image_path(i.sha256, i.format).exists(),
                                     blobs.thumbnail_path(i.sha256).exists())
                   for i in images},
        "queue": [files[i.id] for i in sorted(images, key=lambda i: (
            i.queue_rank is None, i.queue_rank or 0, i.id))],
        "history": [(files[a.image_id], classes[a.label_class_id], username, a.source,
                     a.created_at, a.undone_at, names.get(a.undone_by_id),
                     position.get(a.reviews_id))
                    for a, username in history],
        "rounds": [(r.number, r.status, r.n_labels, r.strategy, r.message, {
            **r.metrics, "classes": [classes[c] for c in r.metrics.get("classes", [])],
            "suspected_errors": [{**e, "image_id": files[e["image_id"]]}
                                 for e in r.metrics.get("suspected_errors", [])]})
                   for r in rounds],
        "vectors": {files[i]: store.vectors_for([i])[0].tolist() for i in files},
        "head": [classes[int(c)] for c in head.classes_],
        "head_proba": head.predict_proba(store.vectors_for(list(files))).round(6).tolist(),
    }


@pytest.fixture
def fresh_app(tmp_path):
    """A second, empty data home (another server)."""
    home = tmp_path / "other"
    other = create_app({"HOME": home, "TESTING": True, "LOGIN_RATE_LIMIT": "",
                        "WTF_CSRF_ENABLED": False, **database_config(home)})
    upgrade_database(other)
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def invoke_in(other, args: list[str]):
    """Run a command against ``other``: the CLI reuses whichever app context is current."""
    with other.app_context():
        return other.test_cli_runner().invoke(args=args)


def backup(runner, tmp_path) -> Path:
    out = tmp_path / "colours.zip"
    result = runner.invoke(args=["backup", "colours", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Backed up project 'colours'" in result.output and "24 images" in result.output
    return out


def test_round_trip_into_a_fresh_home_keeps_labels_history_rounds_and_vectors(
        app, project, runner, tmp_path, fresh_app):
    before = describe("colours")
    archive = backup(runner, tmp_path)
    with fresh_app.app_context():  # so that the restored rows cannot keep their old ids
        create_project("already here", ["x", "y", "z", "w"])
        create_user("zoe", PASSWORD, "lead")

    result = invoke_in(fresh_app, ["restore", str(archive)])

    assert result.exit_code == 0, result.output
    assert "Restored project 'colours'" in result.output
    assert "Created 2 disabled accounts" in result.output and "arno" in result.output
    with fresh_app.app_context():
        assert describe("colours") == before
        users = db.session.scalars(select(User).order_by(User.username)).all()
        assert [(u.username, u.role, u.active) for u in users] == [
            ("arno", "annotator", False), ("lena", "lead", False), ("zoe", "lead", True)]
        assert authenticate("lena", PASSWORD) is None
        # The restored project keeps learning and serving.
        restored = get_project("colours")
        job = run_inline("retrain", restored.id, run_round)
        assert job.status == JobStatus.SUCCEEDED, job.message
        token = create_api_token(create_user("newcomer", "password-123"))
        everyone_joins()
        response = fresh_app.test_client().get(
            f"/api/v1/projects/{restored.id}/next?n=2",
            headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.json
        items = response.json["items"]
        assert len(items) == 2
        assert {p["label"] for p in items[0]["reason"]["probabilities"]} <= set(COLOURS)


def test_restore_as_a_copy_in_the_same_home_matches_annotators_by_name(
        app, project, runner, tmp_path):
    from labeler.membership import set_member

    set_member(project, db.session.scalar(select(User).where(User.username == "arno")),
               "reviewer")
    before = describe("colours")
    archive = backup(runner, tmp_path)
    users_before = db.session.scalar(select(func.count()).select_from(User))

    result = runner.invoke(args=["restore", str(archive), "--as", "copy"])

    assert result.exit_code == 0, result.output
    assert "(0 created)" in result.output
    assert describe("copy") == before
    assert describe("colours") == before
    # Who may see the project, and in what role, comes back with it.
    from labeler.models import ProjectMember

    def members(name: str) -> list[tuple[str, str]]:
        return sorted(db.session.execute(
            select(User.username, ProjectMember.role).join(ProjectMember.user)
            .where(ProjectMember.project_id == get_project(name).id)).all())

    assert members("colours") == [("arno", "reviewer")]
    assert members("copy") == members("colours")
    assert db.session.scalar(select(func.count()).select_from(User)) == users_before
    copy_ids = set(db.session.scalars(select(Image.id).where(
        Image.project_id == get_project("copy").id)))
    assert copy_ids.isdisjoint(db.session.scalars(select(Image.id).where(
        Image.project_id == project.id)))


def test_restoring_over_an_existing_name_is_refused(app, project, runner, tmp_path):
    archive = backup(runner, tmp_path)

    result = runner.invoke(args=["restore", str(archive)])

    assert result.exit_code == 1
    assert "already exists" in result.output and "--as NEW_NAME" in result.output
    assert db.session.scalar(select(func.count()).select_from(Project)) == 1


def rewrite_member(archive: Path, target: Path, name: str, change) -> None:
    """Copy ``archive`` with one member's bytes changed and the old manifest kept."""
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(target, "w") as out:
        for info in source.infolist():
            data = source.read(info.filename)
            out.writestr(info.filename, change(data) if info.filename == name else data)


def test_damaged_archives_are_refused_and_nothing_is_written(
        app, project, runner, tmp_path, fresh_app):
    archive = backup(runner, tmp_path)
    tampered = tmp_path / "tampered.zip"
    rewrite_member(archive, tampered, "rows/annotation.jsonl", lambda data: data[:-20])
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    home = Path(fresh_app.config["HOME"])
    files_before = sorted(p for p in home.rglob("*") if p.is_file())

    for damaged, reason in ((tampered, "checksum of rows/annotation.jsonl does not match"),
                            (truncated, "damaged or not a labeler backup")):
        result = invoke_in(fresh_app, ["restore", str(damaged)])
        assert result.exit_code == 1
        assert reason in result.output and "nothing was restored" in result.output

    with fresh_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Project)) == 0
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
    assert sorted(p for p in home.rglob("*") if p.is_file()) == files_before


def test_a_restore_that_fails_midway_leaves_no_rows_and_no_project_files(
        app, project, tmp_path, monkeypatch):
    archive = tmp_path / "colours.zip"
    backup_project("colours", archive)
    home = Path(app.config["HOME"])
    files_before = sorted(p for p in home.rglob("*") if p.is_file() and "tmp" not in p.parts)
    rows_before = db.session.scalar(select(func.count()).select_from(Annotation))

    def disk_full(project_id, number):
        raise OSError("No space left on device")

    # Heads are the last files written: vectors of the new project already exist by then.
    monkeypatch.setattr("labeler.restore.head_path", disk_full)
    with pytest.raises(OSError, match="No space left"):
        restore_project(archive, "copy")

    assert db.session.scalar(select(Project.id).where(Project.name == "copy")) is None
    assert db.session.scalar(select(func.count()).select_from(Annotation)) == rows_before
    files_after = sorted(p for p in home.rglob("*") if p.is_file() and "tmp" not in p.parts)
    assert files_after == files_before
    assert sorted(p.name for p in (home / "vectors").iterdir()) == [str(project.id)]


def test_backup_of_an_unknown_project_says_which_exist(app, project, runner, tmp_path):
    out = tmp_path / "none.zip"
    result = runner.invoke(args=["backup", "nope", "--out", str(out)])

    assert result.exit_code == 1
    assert "No project named 'nope'" in result.output and "colours" in result.output
    assert not out.exists()


def read_archive(path: Path) -> tuple[dict, dict[str, list[dict]]]:
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        rows = {name[len("rows/"):-len(".jsonl")]: [json.loads(line) for line in
                                                    zf.read(name).splitlines()]
                for name in zf.namelist() if name.startswith("rows/")}
        ids = np.frombuffer(zf.read(next(n for n in zf.namelist() if n.endswith(".ids"))),
                            dtype="<i8")
    rows["vector_ids"] = ids.tolist()
    return manifest, rows


def test_backup_while_labels_keep_arriving_is_one_consistent_instant(
        app, project, annotator, tmp_path):
    project_id = project.id
    started, stop = threading.Event(), threading.Event()
    submitted: list[int] = []
    errors: list[BaseException] = []

    def keep_labelling() -> None:
        with app.app_context():
            try:
                live = db.session.get(Project, project_id)
                user = db.session.get(User, annotator.id)
                while not stop.is_set():
                    images = lease_next(live, user, n=1)
                    if not images:
                        break
                    submit_label(live, images[0].id,
                                 class_by_name(live, true_colour(images[0])), user)
                    submitted.append(images[0].id)
                    started.set()
            except BaseException as exc:  # reported to the test thread below
                errors.append(exc)
            finally:
                started.set()
                db.session.remove()

    worker = threading.Thread(target=keep_labelling)
    worker.start()
    try:
        assert started.wait(timeout=60)
        labels_at_start = len(submitted)
        archive = tmp_path / "live.zip"
        backup_project("colours", archive)
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not errors, errors
    assert labels_at_start >= 1

    manifest, rows = read_archive(archive)
    image_ids = {r["id"] for r in rows["image"]}
    class_ids = {r["id"] for r in rows["label_class"]}
    user_ids = {r["id"] for r in rows["user"]}
    for table in ("image", "annotation", "model_round", "label_class", "user"):
        assert manifest["counts"][table] == len(rows[table])
    assert manifest["counts"]["vectors"] == len(rows["vector_ids"]) == len(image_ids)
    for annotation in rows["annotation"]:
        assert annotation["image_id"] in image_ids
        assert annotation["label_class_id"] in class_ids
        assert annotation["annotator_id"] in user_ids
    # The current label of each image agrees with the history in the same archive: the
    # rows were read at one instant, not table by table while labels changed them.
    latest: dict[int, int | None] = {}
    for annotation in sorted(rows["annotation"], key=lambda a: (a["created_at"], a["id"])):
        if annotation["undone_at"] is None:
            latest[annotation["image_id"]] = annotation["label_class_id"]
    assert {r["id"]: r["label_class_id"] for r in rows["image"]} == {
        i: latest.get(i) for i in image_ids}
    labelled_in_archive = sum(r["label_class_id"] is not None for r in rows["image"])
    assert labelled_in_archive >= 11 + labels_at_start  # 12 labels, one undone, then these
    assert db.session.scalar(select(func.count()).select_from(Annotation)) >= len(
        rows["annotation"])


def test_verify_refuses_a_file_that_is_not_a_backup(app, tmp_path):
    not_backup = tmp_path / "x.zip"
    with zipfile.ZipFile(not_backup, "w") as zf:
        zf.writestr("hello.txt", "hi")

    with pytest.raises(LabelerError, match="not a labeler backup"):
        restore_project(not_backup)


def rewrite_archive(archive: Path, out: Path, replace: dict[str, bytes | None],
                    format_version: int | None = None) -> Path:
    """A copy of ``archive`` with members replaced (None: removed) and a manifest whose
    checksums match again: what someone who edits a backup on purpose would produce."""
    with zipfile.ZipFile(archive) as source:
        manifest = json.loads(source.read("manifest.json"))
        members = {name: source.read(name) for name in source.namelist()
                   if name != "manifest.json"}
    for name, data in replace.items():
        if data is None:
            members.pop(name)
        else:
            members[name] = data
    manifest["members"] = {name: {"sha256": hashlib.sha256(data).hexdigest(),
                                  "size": len(data)} for name, data in members.items()}
    if format_version is not None:
        manifest["format_version"] = format_version
    with zipfile.ZipFile(out, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
        target.writestr("manifest.json", json.dumps(manifest))
    return out


@pytest.mark.parametrize("disguise", ["old-format pickle", "pickle inside the arrays"])
def test_a_backup_whose_model_carries_a_pickle_restores_without_running_it(
        app, project, runner, tmp_path, fresh_app, disguise):
    marker = tmp_path / "the-payload-ran"
    archive = backup(runner, tmp_path)
    number = latest_round(project).number
    if disguise == "old-format pickle":  # as format 1 stored heads, edited by someone
        hostile = rewrite_archive(archive, tmp_path / "hostile.zip", {
            f"models/round-{number}.npz": None,
            f"models/round-{number}.pkl": pickle.dumps(CreatesAFile(marker))}, 1)
        reason = "is an old pickle, which labeler never loads"
    else:
        hostile = rewrite_archive(archive, tmp_path / "hostile.zip", {
            f"models/round-{number}.npz": pickled_head_arrays(marker)})
        reason = "could not be read (it is not plain data"

    result = invoke_in(fresh_app, ["restore", str(hostile)])

    assert result.exit_code == 0, result.output
    assert not marker.exists()
    assert f"The model of round {number} {reason}" in result.output
    assert "retrained from the labels" in result.output
    with fresh_app.app_context():
        restored = get_project("colours")
        assert load_head(restored) is None and head_missing(restored)
        assert not marker.exists()
