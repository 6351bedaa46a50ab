"""``labeler serve`` in a child process: for tests that must kill it (-9) or load it.

Also the data directories such tests prepare for it (``prepare_home``) and ``wait_for``.

The child is the real command line (gunicorn workers, scheduler, background jobs) with one test
addition: the fake colour-layout backbone is registered, so a server can embed and train
without TensorFlow when a test does not need the real network.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
import pytest
import requests
from PIL import Image as PILImage
from sqlalchemy.engine import make_url

from labeler import create_app
from labeler.database import upgrade_database
from labeler.extensions import db
from tests.dbutil import database_config, database_env
from tests.fakes import FAKE_BACKBONE
from tests.imagegen import gradient

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``labeler serve`` on loopback in a child process with its own data directory."""

    def __init__(self, home: Path, *, threads: int = 4, workers: int | None = None,
                 fake_backbone: bool = True,
                 env: dict[str, str] | None = None) -> None:
        self.home = Path(home)
        self.threads = threads
        self.workers = workers
        self.fake_backbone = fake_backbone
        self.extra_env = env or {}
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.home / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 180.0) -> ServerProcess:
        """Start the server and wait until it answers (fails with its log if it dies)."""
        self.home.mkdir(parents=True, exist_ok=True)
        entry = ["-m", "tests.serve_child"] if self.fake_backbone else ["-m", "labeler"]
        # database_env: on a PostgreSQL test run, the database that belongs to this home.
        env = {**os.environ, "LABELER_HOME": str(self.home), "LABELER_LOGIN_RATE_LIMIT": "",
               "PYTHONPATH": str(REPO_ROOT), **database_env(self.home), **self.extra_env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, *entry, "serve", "--port", str(self.port),
             "--threads", str(self.threads),
             *(["--workers", str(self.workers)] if self.workers else [])],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group: master and workers die together
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"labeler serve exited with {self.process.returncode}:\n"
                                   f"{self.log()}")
            try:
                if requests.get(f"{self.url}/auth/login", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.kill9()
        raise RuntimeError(f"labeler serve did not answer within {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        """SIGKILL to the master and its workers: no clean-up runs, like a machine crash."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=30)
            wait_group_gone(self.process.pid)

    def stop(self) -> None:
        """Ask the server to stop (SIGTERM), then kill it if it does not."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def __enter__(self) -> ServerProcess:
        return self.start() if self.process is None else self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# --- data directories for child processes ----------------------------------------------

CLASSES = ["red", "green", "blue"]
DEADLINE_S = 90.0  # generous: the 2-core CI machine is shared



@dataclass
class Home:
    """A prepared data directory: one lead with an API token, one project."""

    path: Path
    project_id: int
    token: str
    annotator_tokens: list[str] = field(default_factory=list)

    @property
    def database(self) -> Path:
        return self.path / "labeler.sqlite3"

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the database directly, as a crashed server left it (SELECTs only).

        Not ``mode=ro``: a read-only connection cannot create the WAL index (``-shm``)
        and fails to open when no other process has the database open at that moment.
        """
        if url := database_config(self.path).get("DATABASE_URL"):  # a PostgreSQL test run
            with psycopg.connect(make_url(url).set(drivername="postgresql")
                                 .render_as_string(hide_password=False)) as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()
        conn = sqlite3.connect(self.database, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def scalar(self, sql: str, *params: Any) -> Any:
        return self.query(sql, *params)[0][0]


def write_images(folder: Path, count: int, size: int = 40) -> list[Path]:
    """``count`` distinct small PNG files."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"img-{i:05d}.png"
        PILImage.fromarray(gradient(size, size, seed=i)).save(path)
        paths.append(path)
    return paths


def prepare_home(path: Path, *, images: Path | None = None, embed: bool = False,
                 annotators: int = 0) -> Home:
    """Create users, tokens and a fake-backbone project; optionally import and embed."""
    from labeler.embeddings import register_backbone
    from labeler.importer import import_paths
    from labeler.jobs import JobKind, run_inline
    from labeler.project_vectors import embed_project
    from labeler.projects import create_project
    from labeler.training import set_training_options
    from labeler.users import create_api_token, create_user
    from tests.builders import everyone_joins
    from tests.fakes import FakeBackbone

    app = create_app({"HOME": path, "IMPORT_WORKERS": 2, "LOGIN_RATE_LIMIT": "",
                      **database_config(path)})
    upgrade_database(app)
    with app.app_context():
        lead = create_user("lead", "correct-horse-battery", "lead")
        token = create_api_token(lead)
        annotator_tokens = [
            create_api_token(create_user(f"annotator{i}", "correct-horse-battery"))
            for i in range(annotators)]
        project = create_project("crash", CLASSES, backbone=FAKE_BACKBONE)
        everyone_joins()  # the annotators label this project
        # Rounds only when a test asks: automatic ones would race with the kill.
        set_training_options(project, retrain_every=100_000)
        if images is not None:
            import_paths(project, [images])
        if embed:
            register_backbone(FAKE_BACKBONE, lambda cache_dir: FakeBackbone())
            job = run_inline(JobKind.EMBED, project.id, embed_project)
            assert job.status == "succeeded", job.message
        home = Home(path, project.id, token, annotator_tokens)
        db.session.remove()
        db.engine.dispose()  # the child server opens the same file
    return home


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = DEADLINE_S,
             server: ServerProcess | None = None) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server is not None and server.process is not None and server.process.poll() is not None:
            pytest.fail(f"server died while waiting for {what}:\n{server.log()}")
        if result := condition():
            return result
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}" + (f":\n{server.log()}" if server else ""))


def wait_group_gone(group: int, timeout: float = 30.0) -> None:
    """Wait until every process of a killed process group has exited.

    SIGKILL is delivered asynchronously: a worker in the middle of an fsync can outlive
    its master by a moment, and a server started in that moment still sees it alive.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _running_members(group):
            return
        time.sleep(0.05)
    raise AssertionError(f"processes of group {group} outlived SIGKILL: "
                         f"{_running_members(group)}")


def _running_members(group: int) -> list[int]:
    """Pids in process group ``group`` that are not zombies (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text(errors="replace").rpartition(")")[2].split()
        except OSError:
            continue
        # fields: state, ppid, pgrp, ...
        if len(fields) > 2 and int(fields[2]) == group and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members
