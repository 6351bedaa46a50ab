"""Background jobs: rows with progress, one active job per kind, dead owners detected."""

from __future__ import annotations

import logging
import re
import threading

import pytest

from labeler.errors import LabelerError
from labeler.extensions import db
from labeler.jobs import JobAlreadyRunning, create_job, fail_stale_jobs, run_inline, runner
from labeler.models import Job, JobStatus
from labeler.projects import create_project


@pytest.fixture
def project(app):
    return create_project("p")


def test_inline_job_records_progress_and_summary(project):
    seen = []

    def work(progress, project_id, count):
        for index in range(count):
            progress((index + 1) / count, f"step {index + 1}", force=True)
            seen.append(db.session.get(Job, progress.job_id).progress)
        return f"did {count} steps"

    job = run_inline("embed", project.id, work, count=4)

    assert job.status == JobStatus.SUCCEEDED and job.message == "did 4 steps"
    assert seen == [0.25, 0.5, 0.75, 1.0]
    assert job.started_at and job.finished_at


def test_failed_job_keeps_a_readable_reason(project):
    def work(progress, project_id):
        raise LabelerError("Nothing to embed: import images first.")

    job = run_inline("embed", project.id, work)
    assert job.status == JobStatus.FAILED
    assert job.message == "Nothing to embed: import images first."


def test_unexpected_error_is_recorded_not_raised(project):
    def work(progress, project_id):
        raise ZeroDivisionError("boom")

    job = run_inline("embed", project.id, work)
    assert job.status == JobStatus.FAILED and "ZeroDivisionError" in job.message


def test_each_job_logs_one_line_when_it_starts_and_one_when_it_ends(project, caplog):
    caplog.set_level(logging.INFO, logger="labeler.jobs")

    done = run_inline("embed", project.id, lambda progress, project_id: "Embedded 3 images.")
    failed = run_inline("import", project.id, _refuse)

    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "labeler.jobs"]
    assert [(level, re.sub(r"\d+\.\d s", "T s", text)) for level, text in lines] == [
        (logging.INFO, f"Started job #{done.id} (embed, project 'p')"),
        (logging.INFO, f"Finished job #{done.id} (embed, project 'p'): succeeded in T s. "
                       "Embedded 3 images."),
        (logging.INFO, f"Started job #{failed.id} (import, project 'p')"),
        (logging.WARNING, f"Finished job #{failed.id} (import, project 'p'): failed in T s. "
                          "Nothing to import: choose a folder first."),
    ]


def _refuse(progress, project_id):
    raise LabelerError("Nothing to import: choose a folder first.")


def test_second_active_job_of_a_kind_is_refused(project):
    first = create_job("retrain", project.id, status=JobStatus.RUNNING)
    with pytest.raises(JobAlreadyRunning, match="already running"):
        create_job("retrain", project.id)
    create_job("embed", project.id)  # another kind is fine
    first.status = JobStatus.SUCCEEDED
    db.session.commit()
    create_job("retrain", project.id)  # and so is the next one once it ended


def test_job_of_a_dead_process_is_failed_and_no_longer_blocks(project):
    job = create_job("embed", project.id, status=JobStatus.RUNNING)
    job.owner = f"{__import__('socket').gethostname()}:999999999"  # no such pid
    db.session.commit()

    assert fail_stale_jobs() == 1
    assert db.session.get(Job, job.id).status == JobStatus.FAILED
    assert "Interrupted" in db.session.get(Job, job.id).message
    create_job("embed", project.id)


def test_runner_runs_jobs_in_the_background_with_an_app_context(app, project):
    started = threading.Event()

    def work(progress, project_id):
        from labeler.models import Project

        started.set()
        return f"saw project {db.session.get(Project, project_id).name}"

    job = runner(app).submit("embed", project.id, work)
    assert runner(app).wait_idle(30)
    db.session.expire_all()
    finished = db.session.get(Job, job.id)
    assert started.is_set() and finished.status == JobStatus.SUCCEEDED
    assert finished.message == "saw project p"
