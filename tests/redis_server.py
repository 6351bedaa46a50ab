"""A Redis server for the distributed-job tests: the CI's, or one started here.

``.ci/run`` starts ``redis-server`` on loopback and exports ``LABELER_TEST_REDIS_URL``;
without it, ``RedisServer`` starts Debian's ``redis-server`` on a free port, with no
persistence, for the test session. Each test gets its own database number (``db_url``), so
tests never see each other's queues.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from pathlib import Path

import redis

from tests.serverproc import free_port

URL_VAR = "LABELER_TEST_REDIS_URL"
DATABASES = 64  # when we start the server: plenty of databases for one per test
_numbers = itertools.count(1)


class RedisServer:
    """A ``redis-server`` child process on loopback, stopped by ``stop``."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: the distributed-job tests need "
                               "it (apt-get install redis-server; .ci/run installs it), or "
                               f"set {URL_VAR} to a running server.")
        self.port = free_port()
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--databases", str(DATABASES), "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and reap it."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def server_url_from_env() -> str | None:
    """The Redis server CI started, if any (without a database number)."""
    return os.environ.get(URL_VAR, "").strip().rstrip("/") or None


def db_url(server_url: str) -> str:
    """A fresh, empty database on the server: ``<server>/<n>``, flushed first."""
    base, _, last = server_url.rpartition("/")
    if last.isdigit() and base.startswith("redis"):  # CI may name a database already
        server_url = base
    limit = DATABASES if server_url_from_env() is None else 16  # Redis's default count
    number = next(_numbers) % limit or 1
    url = f"{server_url}/{number}"
    redis.Redis.from_url(url).flushdb()
    return url
