"""The lead's export page: every format downloads as the export service writes it, the model
is built by a background job, and annotators are refused."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from labeler import export
from labeler.errors import LabelerError
from labeler.extensions import db
from labeler.jobs import runner
from labeler.jobs.kinds import JobKind
from labeler.model_files import built_model, exports_dir
from labeler.models import Job
from labeler.projects import class_by_name
from labeler.queue import lease_next
from labeler.training import run_round
from tests.builders import label, label_all, trained
from tests.conftest import login


def url(project, tail=""):
    return f"/projects/{project.id}/export{tail}"


def read_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def fake_exporter(monkeypatch):
    """A model exporter that writes a small file instead of loading TensorFlow."""
    calls = []

    def write(project, path):
        calls.append(Path(path))
        Path(path).write_bytes(b"keras model of " + project.name.encode())
        return path

    monkeypatch.setattr(export, "model_exporter", lambda: write)
    return calls


def test_the_project_page_links_the_export_page_for_leads_only(client, lead, annotator,
                                                               project):
    login(client, lead.username)
    assert url(project) in client.get(f"/projects/{project.id}").text
    client.post("/auth/logout")
    login(client, annotator.username)
    assert url(project) not in client.get(f"/projects/{project.id}").text


def test_annotators_are_refused_every_export_route(client, annotator, project):
    label_all(project)
    login(client, annotator.username)
    for tail in ("", "/csv?include_predictions=1", "/jsonl", "/folders", "/model.keras"):
        response = client.get(url(project, tail))
        assert response.status_code == 403, tail
        assert "leads" in response.text and "file_name" not in response.text
    assert client.post(url(project, "/model")).status_code == 403
    assert db.session.query(Job).filter_by(kind=JobKind.EXPORT).count() == 0


@pytest.mark.parametrize("predictions", [False, True])
def test_csv_download_is_the_export_services_csv(lead_client, project, predictions):
    label_all(project, every=3)  # 8 of the 24 images
    query = "?include_predictions=1" if predictions else ""
    response = lead_client.get(url(project, f"/csv{query}"))
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="colours.csv"'
    expected = "".join(export.iter_csv(project, include_predictions=predictions))
    assert response.text == expected
    assert len(read_csv(response.text)) == (24 if predictions else 8)
    assert ("predicted" in response.text.splitlines()[0]) is predictions


def test_jsonl_download_is_the_export_services_jsonl(lead_client, project):
    label_all(project, every=2)
    response = lead_client.get(url(project, "/jsonl?include_predictions=on"))
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    assert response.text == "".join(export.iter_jsonl(project, include_predictions=True))
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert len(rows) == 24 and sum(row["label"] is not None for row in rows) == 12


def test_folders_zip_with_and_without_a_validation_split(app, lead_client, project):
    label_all(project)
    response = lead_client.get(url(project, "/folders?val_split=0.25"))
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "filename=colours-folders.zip" in response.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        files = [n for n in archive.namelist() if not n.endswith("/")]
    assert len(files) == 24 and sum(n.startswith("val/") for n in files) == 6
    assert {n.split("/")[1] for n in files} == {"red", "green", "blue"}

    response = lead_client.get(url(project, "/folders?val_split="))  # empty: no split
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        files = [n for n in archive.namelist() if not n.endswith("/")]
    assert len(files) == 24 and {n.split("/")[0] for n in files} == {"red", "green", "blue"}
    assert not any((Path(app.config["HOME"]) / "tmp").iterdir())  # built, sent, removed


@pytest.mark.parametrize("value", ["1.5", "0", "a fifth"])
def test_a_bad_validation_split_is_a_sentence_on_the_page(lead_client, project, value):
    response = lead_client.get(url(project, f"/folders?val_split={value}"))
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "is not a fraction between 0 and 1" in response.text
    assert 'id="export-error"' in response.text and "Download zip" in response.text


def test_unknown_format_and_project_are_404(lead_client, project):
    assert lead_client.get(url(project, "/pdf")).status_code == 404
    assert lead_client.get("/projects/999/export").status_code == 404
    assert lead_client.get("/projects/999/export/csv").status_code == 404


def test_without_a_trained_round_the_page_says_so_and_offers_no_build(lead_client, project,
                                                                    fake_exporter):
    page = lead_client.get(url(project)).text
    assert "There is no trained model to export yet." in page
    assert 'id="build-model"' not in page and "model.keras" not in page
    response = lead_client.post(url(project, "/model"))
    assert response.status_code == 400 and "no trained model" in response.text
    assert fake_exporter == []
    assert lead_client.get(url(project, "/model.keras")).status_code == 404


def test_without_tensorflow_the_page_says_so(lead_client, project, monkeypatch):
    monkeypatch.setattr(export, "model_exporter", lambda: None)
    page = lead_client.get(url(project)).text
    assert "needs TensorFlow" in page and 'id="build-model"' not in page


def build(app, client, project):
    """Press "Build the model file" and wait for the background job."""
    response = client.post(url(project, "/model"))
    assert response.status_code == 303 and response.headers["Location"].endswith("#model")
    assert runner(app).wait_idle(30)
    db.session.expire_all()


def test_the_model_is_built_by_a_job_then_downloaded(app, lead_client, project, annotator,
                                                     fake_exporter):
    trained(project, annotator)  # rounds 1 (cold start) and 2 (trained)
    page = lead_client.get(url(project)).text
    assert 'id="build-model"' in page and "classifier of round 2" in page

    build(app, lead_client, project)
    job = db.session.query(Job).filter_by(kind=JobKind.EXPORT).one()
    assert job.status == "succeeded", job.message
    assert "round 2 is ready to download" in job.message
    assert fake_exporter == [exports_dir(project.id) / f"round-2.job-{job.id}.keras"]
    page = lead_client.get(url(project)).text
    assert "Download the model of round 2" in page and "Build again" in page

    response = lead_client.get(url(project, "/model.keras"))
    assert response.status_code == 200 and response.data == b"keras model of colours"
    assert "filename=colours-round2.keras" in response.headers["Content-Disposition"]

    # A newer round: the page says the file is older; building again replaces it.
    for image in lease_next(project, annotator, n=3):
        label(project, image, annotator)
    from labeler.jobs import run_inline

    assert run_inline("retrain", project.id, run_round).status == "succeeded"
    assert "Round 3 has trained since" in lead_client.get(url(project)).text
    build(app, lead_client, project)
    assert built_model(project.id).round_number == 3
    assert [p.name for p in exports_dir(project.id).iterdir()] == [fake_exporter[-1].name]
    assert "Round 3 has trained since" not in lead_client.get(url(project)).text


def test_a_failed_model_export_says_why(app, lead_client, project, annotator,
                                        monkeypatch):
    trained(project, annotator)

    def fail(project, path):
        raise LabelerError("The backbone file is missing; run `labeler embed` again.")

    monkeypatch.setattr(export, "model_exporter", lambda: fail)
    build(app, lead_client, project)
    page = lead_client.get(url(project)).text
    assert "The last model export failed: The backbone file is missing" in page
    assert 'id="build-model"' in page and 'id="model-download"' not in page


def test_an_export_job_in_progress_shows_its_progress_not_a_second_button(
        lead_client, project, annotator, fake_exporter):
    from labeler.jobs import create_job

    trained(project, annotator)
    job = create_job(JobKind.EXPORT, project.id)  # queued, as if the runner were busy
    page = lead_client.get(url(project)).text
    assert f'data-job-id="{job.id}"' in page and 'id="build-model"' not in page
    response = lead_client.post(url(project, "/model"), follow_redirects=True)
    assert "already queued" in response.text  # one export at a time, said in a sentence
    assert db.session.query(Job).filter_by(kind=JobKind.EXPORT).count() == 1


def test_building_the_model_needs_the_forms_csrf_token(app, lead, project, annotator,
                                                       fake_exporter):
    trained(project, annotator)
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    page = client.get("/auth/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]
    client.post("/auth/login", data={"username": lead.username,
                                     "password": "correct-horse-battery", "csrf_token": token})
    assert client.post(url(project, "/model")).status_code == 400
    assert db.session.query(Job).filter_by(kind=JobKind.EXPORT).count() == 0
    page = client.get(url(project)).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]
    assert client.post(url(project, "/model"), data={"csrf_token": token}).status_code == 303
    assert class_by_name(project, "red") is not None
