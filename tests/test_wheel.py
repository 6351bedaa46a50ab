"""A built wheel (not the checkout) serves pages through the real WSGI server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.dbutil import database_env, migrated_tables, on_postgres

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 60.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"server exited: {output}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """Build the wheel without the network and unpack it into a private directory."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out / "dist"), str(ROOT)], check=True)
    (wheel,) = (out / "dist").glob("labeler-*.whl")
    target = out / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True)
    return target


def test_wheel_contains_templates_static_and_migrations(installed_wheel):
    package = installed_wheel / "labeler"
    assert (package / "templates" / "base.html").is_file()
    assert (package / "static" / "app.css").is_file()
    # Vendored code ships with its licence and notice (Apache-2.0 asks for both).
    vendor = package / "static" / "vendor" / "swagger-ui"
    assert {"swagger-ui-bundle.js", "LICENSE", "NOTICE"} <= {p.name for p in vendor.iterdir()}
    assert list((package / "migrations" / "versions").glob("*.py"))


def test_installed_wheel_serves_pages_with_gunicorn(installed_wheel, tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(installed_wheel), "LABELER_HOME": str(tmp_path),
           **database_env(tmp_path, empty=True)}
    process = subprocess.Popen(
        [sys.executable, "-m", "labeler", "serve", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        page = wait_for_http(f"http://127.0.0.1:{port}/auth/login", process)
        assert b"Log in" in page and b"labeler user create" in page
        css = wait_for_http(f"http://127.0.0.1:{port}/static/app.css", process)
        assert b"--accent" in css
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert "serving on http://localhost" in output
    assert "Booting worker" in output  # gunicorn, the production server, not Flask's
    assert str(installed_wheel) in subprocess.run(
        [sys.executable, "-c", "import labeler; print(labeler.__file__)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    # Migrations ran from the wheel (on PostgreSQL the database began empty).
    if on_postgres():
        assert "alembic_version" in migrated_tables(env["LABELER_DATABASE_URL"])
    else:
        assert (tmp_path / "labeler.sqlite3").exists()
