"""Jobs on RQ/Redis: a real ``redis-server``, real ``labeler worker`` child processes.

With ``QUEUE_URL`` set the app only queues jobs; workers run them, share the chunks of a
large embedding, and finish the chunk of a worker killed with SIGKILL. Without it nothing
changes (tests/test_jobs.py). Workers use the fake backbone (tests/worker_child.py).
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from rq import Queue, Worker
from sqlalchemy import select

from labeler import create_app
from labeler.database import upgrade_database
from labeler.extensions import db
from labeler.jobs import JobRunner, runner
from labeler.jobs.pipelines import submit_embedding
from labeler.jobs.rq.backend import RqBackend
from labeler.models import Job, JobChunk, JobStatus
from labeler.project_vectors import current_vectors, embedding_counts
from labeler.projects import create_project
from labeler.users import create_api_token, create_user
from tests import dbutil
from tests.builders import COLOURS, colour_image
from tests.conftest import migrated_app
from tests.fakes import FAKE_BACKBONE
from tests.redis_server import db_url
from tests.worker_child import add_tiny_images, start_worker

HOST = socket.gethostname()


@pytest.fixture
def queue_url(redis_server: str) -> str:
    return db_url(redis_server)  # a database of its own: no other test's queues


@pytest.fixture
def app(tmp_path: Path, queue_url: str) -> Iterator[Flask]:
    """Like conftest's app, with jobs going to the Redis queue."""
    with migrated_app(tmp_path / "data", QUEUE_URL=queue_url) as app:
        yield app


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes a test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 180.0) -> None:
    """Poll ``condition`` (with a fresh database snapshot) until true, or fail."""
    deadline = time.monotonic() + timeout_s
    while True:
        db.session.rollback()  # end the read transaction: see the workers' commits
        if condition():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def jobs_of(project_id: int, kind: str) -> list[Job]:
    return list(db.session.scalars(select(Job).where(
        Job.project_id == project_id, Job.kind == kind).order_by(Job.id)))


def chunks_of(job_id: int) -> list[JobChunk]:
    return list(db.session.scalars(select(JobChunk).where(JobChunk.job_id == job_id)
                                   .order_by(JobChunk.number)))


def finished(process: subprocess.Popen[bytes], timeout_s: float = 180.0) -> int:
    return process.wait(timeout_s)


def test_upload_and_retrain_from_the_api_run_on_a_worker(app, client, workers):
    home = app.config["HOME"]
    project = create_project("colours", list(COLOURS), backbone=FAKE_BACKBONE)
    token = create_api_token(create_user("lena", "password-123", "lead"))
    files = [(io.BytesIO(colour_image(rgb, seed=i * 3 + k)), f"{name}_{i}.png")
             for k, (name, rgb) in enumerate(COLOURS.items()) for i in range(4)]
    response = app.test_client().post(
        f"/api/v1/projects/{project.id}/images", content_type="multipart/form-data",
        headers={"Authorization": f"Bearer {token}"}, data={"files": files})
    assert response.status_code == 200 and response.json["imported"] == 12

    # The app queued the embedding in Redis and runs nothing itself.
    assert isinstance(runner(app), RqBackend)
    [embed] = jobs_of(project.id, "embed")
    assert embed.status == JobStatus.QUEUED and embed.owner == "queue:labeler-embed"
    assert Queue("labeler-embed", connection=runner(app).connection).count == 1

    worker = start_worker(home, app.config["QUEUE_URL"], "--burst")
    workers.append(worker)
    assert finished(worker) == 0
    db.session.rollback()
    [embed] = jobs_of(project.id, "embed")
    assert (embed.status, embed.progress) == (JobStatus.SUCCEEDED, 1.0), embed.message
    assert [(c.status, c.owner) for c in chunks_of(embed.id)] == [
        (JobStatus.SUCCEEDED, f"{HOST}:{worker.pid}")]
    assert embedding_counts(project) == (12, 12)
    # The last chunk queued the round that ranks the new images; the same worker ran it.
    [round_job] = jobs_of(project.id, "retrain")
    assert (round_job.status, round_job.progress) == (JobStatus.SUCCEEDED, 1.0), \
        round_job.message

    response = app.test_client().post(f"/api/v1/projects/{project.id}/retrain",
                                      headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 202 and response.json["status"] == JobStatus.QUEUED
    worker = start_worker(home, app.config["QUEUE_URL"], "--burst")
    workers.append(worker)
    assert finished(worker) == 0
    db.session.rollback()
    job = db.session.get(Job, response.json["job_id"])
    assert (job.status, job.progress) == (JobStatus.SUCCEEDED, 1.0), job.message


def test_a_large_embedding_is_split_into_chunks_that_two_workers_share(app, workers):
    home = app.config["HOME"]
    project = create_project("many", ["a", "b"], backbone=FAKE_BACKBONE)
    image_ids = add_tiny_images(project.id, home, 3000)
    connection = runner(app).connection
    slow = {"LABELER_TEST_EMBED_DELAY_S": "0.05"}  # a chunk lasts long enough to share
    workers.extend(start_worker(home, app.config["QUEUE_URL"], env=slow) for _ in range(2))
    # Both idle on the queue before any work arrives, so neither can take all of it.
    wait_for(lambda: len(Worker.all(connection=connection)) == 2, "two workers listening")

    job = submit_embedding(app, project)
    assert job is not None
    wait_for(lambda: db.session.get(Job, job.id).status == JobStatus.SUCCEEDED
             and all(bool(jobs_of(project.id, kind))
                     and jobs_of(project.id, kind)[0].status == JobStatus.SUCCEEDED
                     for kind in ("retrain", "map")),
             "the embedding and its follow-ups: a round and the map's layout", 600)
    for process in workers:
        process.send_signal(signal.SIGTERM)  # warm shutdown: both are idle again
        assert finished(process, 60) == 0

    job = db.session.get(Job, job.id)
    chunks = chunks_of(job.id)
    assert job.progress == 1.0 and "in 3 chunks" in job.message
    assert [(c.size, c.done, c.status) for c in chunks] == [
        (1000, 1000, JobStatus.SUCCEEDED)] * 3
    assert {c.owner for c in chunks} == {f"{HOST}:{p.pid}" for p in workers}
    assert sorted(i for c in chunks for i in c.image_ids) == sorted(image_ids)
    ids = current_vectors(project).image_ids()
    assert len(ids) == 3000 and sorted(ids.tolist()) == sorted(image_ids)  # each once


def test_a_chunk_of_a_worker_killed_mid_way_is_finished_by_another(app, workers):
    home = app.config["HOME"]
    project = create_project("killed", ["a", "b"], backbone=FAKE_BACKBONE)
    image_ids = add_tiny_images(project.id, home, 2000)
    job = submit_embedding(app, project)
    assert job is not None
    doomed = start_worker(home, app.config["QUEUE_URL"], "--burst",
                          env={"LABELER_TEST_EMBED_DELAY_S": "0.2"})
    workers.append(doomed)

    def mid_chunk() -> bool:
        return any(0 < c.done < c.size for c in chunks_of(job.id))

    wait_for(mid_chunk, "the first worker half-way through a chunk")
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    db.session.rollback()
    [cut] = [c for c in chunks_of(job.id) if c.status == JobStatus.RUNNING]
    assert cut.owner == f"{HOST}:{doomed.pid}" and 0 < cut.done < cut.size
    assert db.session.get(Job, job.id).status == JobStatus.RUNNING
    kept = set(current_vectors(project).image_ids().tolist())
    assert kept and kept < set(cut.image_ids)  # its durable batches survived the kill

    rescuer = start_worker(home, app.config["QUEUE_URL"], "--burst")
    workers.append(rescuer)
    assert finished(rescuer) == 0
    db.session.rollback()
    job = db.session.get(Job, job.id)
    assert (job.status, job.progress) == (JobStatus.SUCCEEDED, 1.0), job.message
    chunks = chunks_of(job.id)
    assert all(c.status == JobStatus.SUCCEEDED and c.done == c.size for c in chunks)
    cut = next(c for c in chunks if c.id == cut.id)
    assert cut.attempts == 2 and cut.owner == f"{HOST}:{rescuer.pid}"
    ids = current_vectors(project).image_ids()
    # Nothing lost, nothing embedded twice: the retry skipped the batches already stored.
    assert len(ids) == 2000 and sorted(ids.tolist()) == sorted(image_ids)


def test_import_queued_from_the_cli_is_run_by_a_worker_then_embedded(app, workers,
                                                                      tmp_path):
    from tests import imagegen

    home = app.config["HOME"]
    project = create_project("colours", list(COLOURS), backbone=FAKE_BACKBONE)
    folder = tmp_path / "incoming"
    for k, (name, rgb) in enumerate(COLOURS.items()):
        imagegen.write_files(folder / name, {f"{name}_{i}.png": colour_image(rgb, seed=i * 3 + k)
                                             for i in range(5)})
    imagegen.write_files(folder, {"notes.jpg": b"not an image"})

    result = app.test_cli_runner().invoke(
        args=["import", "colours", str(folder), "--labels-from-folders", "--queue"])
    assert result.exit_code == 0, result.output
    [job] = jobs_of(project.id, "import")
    assert f"Queued import job {job.id}" in result.output
    assert job.status == JobStatus.QUEUED and job.owner == "queue:labeler-import"
    assert embedding_counts(project) == (0, 0)  # nothing imported by the CLI itself

    worker = start_worker(home, app.config["QUEUE_URL"], "--burst")
    workers.append(worker)
    assert finished(worker) == 0
    db.session.rollback()
    [job] = jobs_of(project.id, "import")
    assert (job.status, job.progress) == (JobStatus.SUCCEEDED, 1.0), job.message
    assert "15 imported" in job.message and "notes.jpg: not an image" in job.message
    assert embedding_counts(project) == (15, 15)  # the import queued the embedding
    [embed] = jobs_of(project.id, "embed")
    assert embed.status == JobStatus.SUCCEEDED, embed.message


def test_without_a_queue_url_jobs_stay_in_process_and_worker_refuses(tmp_path):
    home = tmp_path / "plain"
    app = create_app({"HOME": home, "TESTING": True, **dbutil.database_config(home)})
    assert isinstance(runner(app), JobRunner)
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code == 1 and "LABELER_QUEUE_URL is not set" in result.output
    assert app.test_cli_runner().invoke(args=["project", "create", "plain"]).exit_code == 0
    result = app.test_cli_runner().invoke(args=["import", "plain", str(tmp_path), "--queue"])
    assert result.exit_code == 1 and "needs LABELER_QUEUE_URL" in result.output


def test_an_unreachable_queue_fails_the_job_with_a_reason(tmp_path):
    from labeler.errors import LabelerError
    from tests.serverproc import free_port

    home = tmp_path / "nowhere"
    app = create_app({"HOME": home, "TESTING": True,
                      "QUEUE_URL": f"redis://127.0.0.1:{free_port()}/0",
                      **dbutil.database_config(home)})
    upgrade_database(app)
    with app.app_context():
        project = create_project("p", ["a"], backbone=FAKE_BACKBONE)
        with pytest.raises(LabelerError, match="cannot be reached"):
            submit_embedding(app, project)
        [job] = jobs_of(project.id, "embed")
        assert job.status == JobStatus.FAILED and "job queue" in job.message
        db.session.remove()
        db.engine.dispose()

