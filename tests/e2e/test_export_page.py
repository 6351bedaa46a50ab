"""A lead exports from the web page in a real Chromium, under the real Content-Security-Policy:
a CSV whose rows are `labeler export`'s, and the model built by a job with its progress."""

from __future__ import annotations

import csv
import io
import threading
from pathlib import Path

import pytest

from labeler import export
from labeler.users import create_user
from tests.builders import label_all, trained
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.e2e



@pytest.fixture
def strict_page(browser):
    """A page under the real CSP (no bypass), failing the test on any script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 800},
                                  accept_downloads=True)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    yield page
    context.close()
    assert problems == []


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_lead_downloads_the_csv_that_labeler_export_writes(app, strict_page, live_server,
                                                          project, tmp_path):
    page = strict_page
    label_all(project, every=3)
    create_user("lena", "password-123", "lead")
    log_in(page, live_server, "lena", "password-123")
    page.goto(f"{live_server}/projects/{project.id}")
    page.click("text=Export")
    page.check("input[name=include_predictions]")
    with page.expect_download() as download:
        page.click("#download-csv")
    assert download.value.suggested_filename == "colours.csv"
    downloaded = Path(download.value.path()).read_text(encoding="utf-8")

    out = tmp_path / "cli.csv"
    result = app.test_cli_runner().invoke(args=["export", "colours", "--format", "csv",
                                                "--include-predictions", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert rows(downloaded) == rows(out.read_text(encoding="utf-8"))
    assert len(rows(downloaded)) == 24  # every image, with its prediction
    assert sum(bool(row["label"]) for row in rows(downloaded)) == 8


def test_lead_builds_the_model_watches_the_job_and_downloads_it(strict_page, live_server,
                                                                project, monkeypatch):
    page = strict_page
    release = threading.Event()

    def slow_exporter(project, path):
        release.wait(30)  # the job stays running until the test has seen its progress
        Path(path).write_bytes(b"a keras file")

    monkeypatch.setattr(export, "model_exporter", lambda: slow_exporter)
    lead = create_user("lena", "password-123", "lead")
    log_in(page, live_server, "lena", "password-123")
    page.goto(f"{live_server}/projects/{project.id}/export")
    assert "no trained model to export yet" in page.text_content("#model")
    assert page.locator("#build-model").count() == 0

    trained(project, lead)
    page.reload()
    page.click("#build-model")
    page.wait_for_selector("#model-job")
    page.wait_for_selector("#model-job-text:has-text('Building the model of round 2')")
    release.set()
    page.wait_for_selector("#model-download", timeout=15_000)  # the script reloaded the page
    assert page.text_content("#model-download").strip() == "Download the model of round 2"
    with page.expect_download() as download:
        page.click("#model-download")
    assert download.value.suggested_filename == "colours-round2.keras"
    assert Path(download.value.path()).read_bytes() == b"a keras file"
