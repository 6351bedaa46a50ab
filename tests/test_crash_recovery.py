"""kill -9 during an import, an embedding job and a retrain round, then restart.

Each test runs the real ``labeler serve`` (and ``labeler import``) in a child process,
slowed down through the test hooks of ``tests/serve_child.py`` so the kill lands half-way
through the work, not before or after it. After the restart nothing acknowledged may be
lost, nothing half-written may be visible, the interrupted job must say so, and running
the work again must finish it. No response of the server may be a 5xx at any time.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image as PILImage

from tests.dbutil import database_env
from tests.serverproc import (
    CLASSES,
    DEADLINE_S,
    REPO_ROOT,
    Home,
    ServerProcess,
    prepare_home,
    wait_for,
    write_images,
)

# --- helpers ------------------------------------------------------------------------------


class Client:
    """An API client that keeps every status code it was answered with."""

    def __init__(self, server: ServerProcess, token: str, statuses: list[int]) -> None:
        self.base = f"{server.url}/api/v1"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.statuses = statuses

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = requests.request(method, self.base + path, headers=self.headers,
                                    timeout=60, **kwargs)
        self.statuses.append(response.status_code)
        return response


def job_row(home: Home, job_id: int) -> tuple[str, float, str]:
    """(status, progress, message) of a job, read from the database."""
    return home.query("SELECT status, progress, message FROM job WHERE id = ?", job_id)[0]


def latest_job(home: Home, kind: str) -> int | None:
    rows = home.query("SELECT id FROM job WHERE kind = ? AND project_id = ? ORDER BY id DESC "
                      "LIMIT 1", kind, home.project_id)
    return rows[0][0] if rows else None


def wait_job_done(client: Client, job_id: int, server: ServerProcess) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        job = client.call("GET", f"/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed") else None

    return wait_for(finished, f"job {job_id} to finish", server=server)


def assert_stored_images_whole(home: Home) -> dict[str, int]:
    """Every image row has its original (same SHA-256, decodable) and a decodable thumbnail.

    Returns the rows as {sha256: id}.
    """
    rows = home.query("SELECT id, sha256, format FROM image WHERE project_id = ?",
                      home.project_id)
    from labeler.storage import BlobStore

    blobs = BlobStore(home.path)
    for image_id, sha256, fmt in rows:
        original = blobs.image_path(sha256, fmt)
        thumbnail = blobs.thumbnail_path(sha256)
        assert original.is_file() and thumbnail.is_file(), f"image {image_id} lacks its files"
        data = original.read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha256, f"image {image_id} is corrupt"
        for payload in (data, thumbnail.read_bytes()):
            with PILImage.open(io.BytesIO(payload)) as decoded:
                decoded.load()  # raises on a truncated file
    # Even files no row points to yet (stored before their batch was committed) are whole
    # under their final name: a half-written file can only be a hidden temporary one
    # (storage.atomic_writer names them ".<final name>.<random>").
    for stored in (home.path / "images").rglob("*"):
        if stored.is_file() and not stored.name.startswith("."):
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == stored.name.split(".")[0]
    return {sha256: image_id for image_id, sha256, _ in rows}


def assert_no_5xx(statuses: list[int]) -> None:
    assert statuses, "no response was recorded"
    assert not [s for s in statuses if s >= 500], f"server errors: {statuses}"


@contextmanager
def cli(home: Home, *args: str,
        env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """``labeler <args>`` (with the test hooks) in a child process on ``home``.

    The process is killed on leaving the block if it still runs, so a failing test
    leaves nothing behind.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.serve_child", *args], cwd=REPO_ROOT, text=True,
        env={**os.environ, "LABELER_HOME": str(home.path), "PYTHONPATH": str(REPO_ROOT),
             **database_env(home.path), **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def image_count(home: Home) -> int:
    return home.scalar("SELECT count(*) FROM image WHERE project_id = ?", home.project_id)


# --- 1. import ------------------------------------------------------------------------------


def test_kill9_during_cli_import_and_server_upload(tmp_path: Path) -> None:
    count = 600
    files = write_images(tmp_path / "photos", count)
    home = prepare_home(tmp_path / "data")

    # (a) the bulk path: `labeler import`, killed once its first batches are committed.
    with cli(home, "import", "crash", str(tmp_path / "photos"),
             env={"LABELER_TEST_IMPORT_DELAY_S": "0.01"}) as importing:
        wait_for(lambda: importing.poll() is not None or 0 < image_count(home), "a batch")
        if importing.poll() is not None:
            pytest.fail(f"import ended before the kill: {importing.communicate()}")
        importing.kill()  # SIGKILL
        importing.wait(timeout=30)
    stored_before = image_count(home)
    assert 0 < stored_before < count
    assert_stored_images_whole(home)

    with cli(home, "import", "crash", str(tmp_path / "photos")) as rerun:
        out, err = rerun.communicate(timeout=DEADLINE_S)
    assert rerun.returncode == 0, err
    assert f"{count - stored_before} imported, {stored_before} duplicates, 0 rejected" in out
    by_sha = assert_stored_images_whole(home)
    assert len(by_sha) == count
    assert set(by_sha) == {hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    # (b) the server path: a zip upload of new images, the server killed mid-request.
    more = write_images(tmp_path / "more", count, size=44)
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in more:
            zipped.write(path, path.name)
    statuses: list[int] = []
    env = {"LABELER_TEST_IMPORT_DELAY_S": "0.01"}
    server = ServerProcess(home.path, env=env).start()
    try:
        client = Client(server, home.token, statuses)
        outcome: list[BaseException | requests.Response] = []

        def upload() -> None:
            try:
                with archive.open("rb") as handle:
                    outcome.append(client.call("POST", f"/projects/{home.project_id}/images",
                                               files={"files": ("more.zip", handle)}))
            except requests.RequestException as exc:  # the kill cuts the connection
                outcome.append(exc)

        uploader = threading.Thread(target=upload)
        uploader.start()
        wait_for(lambda: image_count(home) > count or outcome, "the upload's first batch",
                 server=server)
        assert not outcome, f"upload finished before the kill: {outcome}"
        server.kill9()
        uploader.join(timeout=DEADLINE_S)
        assert outcome and isinstance(outcome[0], requests.RequestException)
        stored_before = image_count(home) - count
        assert 0 < stored_before < count
        assert_stored_images_whole(home)

        server = ServerProcess(home.path).start()  # restarted, not slowed down
        client = Client(server, home.token, statuses)
        with archive.open("rb") as handle:
            report = client.call("POST", f"/projects/{home.project_id}/images",
                                 files={"files": ("more.zip", handle)}).json()
        assert (report["imported"], report["duplicates"], report["rejected"]) == (
            count - stored_before, stored_before, [])
        stats = client.call("GET", f"/projects/{home.project_id}/stats").json()
        assert stats["counts"]["images"] == 2 * count
    finally:
        server.stop()
    by_sha = assert_stored_images_whole(home)
    assert set(by_sha) == {hashlib.sha256(p.read_bytes()).hexdigest() for p in files + more}
    assert_no_5xx(statuses)


# --- 2. embedding ---------------------------------------------------------------------------


def vector_files(home: Home) -> tuple[Path, Path]:
    folder = home.path / "vectors" / str(home.project_id)
    return next(folder.glob("*.f16")), next(folder.glob("*.ids"))


def test_kill9_during_background_embedding(tmp_path: Path) -> None:
    count = 480
    write_images(tmp_path / "photos", count)
    home = prepare_home(tmp_path / "data", images=tmp_path / "photos")
    image_ids = {row[0] for row in home.query("SELECT id FROM image")}
    statuses: list[int] = []
    # 15 batches of 32, a quarter of a second each: the kill lands in the middle.
    server = ServerProcess(home.path, env={"LABELER_TEST_EMBED_DELAY_S": "0.25"}).start()
    try:
        client = Client(server, home.token, statuses)
        job_id = wait_for(lambda: latest_job(home, "embed"), "the embed job", server=server)

        def midway() -> bool:
            job = client.call("GET", f"/jobs/{job_id}").json()
            assert job["status"] in ("queued", "running"), job
            return 0 < job["progress"] < 0.8

        wait_for(midway, "embedding progress", server=server)
        server.kill9()
        vectors_path, ids_path = vector_files(home)
        rows_before = ids_path.stat().st_size // 8
        assert 0 < rows_before < count
        # Simulate the kill landing inside an append: half a row of vectors, no id.
        row_bytes = vectors_path.stat().st_size // rows_before
        with vectors_path.open("ab") as handle:
            handle.write(b"\x01" * (row_bytes // 2))

        server = ServerProcess(home.path).start()
        client = Client(server, home.token, statuses)
        status, _, message = job_row(home, job_id)
        assert status == "failed" and message.startswith("Interrupted"), message
        # The restarted server queues a new embed job by itself, which resumes the work.
        resumed = wait_for(lambda: (latest_job(home, "embed") or 0) > job_id and
                           latest_job(home, "embed"), "a resumed embed job", server=server)
        job = wait_job_done(client, resumed, server)
        assert job["status"] == "succeeded", job
        assert job["message"].startswith(f"Embedded {count - rows_before} images"), job
        stats = client.call("GET", f"/projects/{home.project_id}/stats").json()
        assert stats["counts"]["embedded"] == count
    finally:
        server.stop()
    ids = np.fromfile(ids_path, dtype="<i8")
    assert vectors_path.stat().st_size == len(ids) * row_bytes  # whole rows, aligned
    assert len(ids) == count and set(ids.tolist()) == image_ids  # each image exactly once
    vectors = np.fromfile(vectors_path, dtype="<f2").reshape(len(ids), -1)
    assert np.isfinite(vectors).all()
    assert_no_5xx(statuses)


# --- 3. retrain -----------------------------------------------------------------------------


def label_some(client: Client, project_id: int, n: int, acked: dict[int, str]) -> None:
    """Lease and label ``n`` images; record each label the server acknowledged (201)."""
    items = client.call("GET", f"/projects/{project_id}/next", params={"n": n}).json()["items"]
    for item in items:
        label = CLASSES[item["image_id"] % len(CLASSES)]
        response = client.call("POST", f"/projects/{project_id}/annotations",
                               json={"image_id": item["image_id"], "label": label})
        assert response.status_code == 201, response.text
        acked[item["image_id"]] = label


def test_kill9_during_retrain_round(tmp_path: Path) -> None:
    count = 400
    write_images(tmp_path / "photos", count)
    home = prepare_home(tmp_path / "data", images=tmp_path / "photos", embed=True,
                        annotators=2)
    statuses: list[int] = []
    acked: dict[int, str] = {}
    # 8 chunks of 50 predictions, 0.3 s apart: a round spends ~2.4 s writing.
    env = {"LABELER_TEST_ROUND_CHUNK": "50", "LABELER_TEST_ROUND_DELAY_S": "0.3"}
    server = ServerProcess(home.path, env=env).start()
    try:
        lead = Client(server, home.token, statuses)
        annotators = [Client(server, token, statuses) for token in home.annotator_tokens]
        for annotator in annotators:
            label_some(annotator, home.project_id, 12, acked)
        # The cold-start round the server queued at start, then a trained round.
        cold = wait_for(lambda: latest_job(home, "retrain"), "the cold-start round")
        wait_job_done(lead, cold, server)
        trained = lead.call("POST", f"/projects/{home.project_id}/retrain").json()["job_id"]
        assert wait_job_done(lead, trained, server)["status"] == "succeeded"
        active = lead.call("GET", f"/projects/{home.project_id}/stats").json()["active_round"]
        assert active["number"] == 2 and active["n_labels"] == 24

        for annotator in annotators:
            label_some(annotator, home.project_id, 5, acked)
        doomed = lead.call("POST", f"/projects/{home.project_id}/retrain").json()["job_id"]
        for annotator in annotators:  # labelling goes on while the round runs
            label_some(annotator, home.project_id, 3, acked)
        wait_for(lambda: home.scalar("SELECT count(*) FROM image WHERE prediction_round = 3"),
                 "round 3 writing predictions", server=server)
        server.kill9()
        assert job_row(home, doomed)[0] == "running"
        written = home.scalar("SELECT count(*) FROM image WHERE prediction_round = 3")
        assert 0 < written < count

        server = ServerProcess(home.path).start()
        lead = Client(server, home.token, statuses)
        status, _, message = job_row(home, doomed)
        assert status == "failed" and message.startswith("Interrupted"), message
        labels = dict(home.query(
            "SELECT image.id, label_class.name FROM image JOIN label_class "
            "ON label_class.id = image.label_class_id WHERE image.project_id = ?",
            home.project_id))
        assert labels == acked  # every acknowledged label, nothing else
        assert home.scalar("SELECT count(*) FROM annotation WHERE undone_at IS NULL") == len(
            acked)
        stats = lead.call("GET", f"/projects/{home.project_id}/stats").json()
        assert stats["active_round"]["number"] == 2  # the model of the last whole round
        assert {r["number"]: r["status"] for r in stats["rounds"]} == {
            1: "skipped", 2: "succeeded", 3: "failed"}
        assert stats["rounds"][2]["message"].startswith("Interrupted")
        # Rows the interrupted round reached carry its number; the rest still round 2's.
        assert {r[0] for r in home.query("SELECT DISTINCT prediction_round FROM image")} == {
            2, 3}

        again = lead.call("POST", f"/projects/{home.project_id}/retrain").json()["job_id"]
        assert wait_job_done(lead, again, server)["status"] == "succeeded"
        stats = lead.call("GET", f"/projects/{home.project_id}/stats").json()
        assert stats["active_round"]["number"] == 4
        assert stats["active_round"]["n_labels"] == len(acked)
    finally:
        server.stop()
    assert home.query("SELECT DISTINCT prediction_round FROM image") == [(4,)]
    assert_no_5xx(statuses)
