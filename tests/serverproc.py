"""``labeler serve`` in a child process: for tests that must kill it (-9) or load it.

The child is the real command line (gunicorn workers, scheduler, background jobs) with one test
addition: the fake colour-layout backbone is registered, so a server can embed and train
without TensorFlow when a test does not need the real network.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import requests

from tests.dbutil import database_env

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
