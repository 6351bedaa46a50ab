"""What ``labeler serve`` prints on its terminal: requests (unless turned off) and jobs."""

from __future__ import annotations

import re

import requests

from labeler import create_app
from labeler.server import gunicorn_log_options
from tests.serverproc import ServerProcess, prepare_home, wait_for, write_images


def test_access_log_setting_reaches_gunicorn(tmp_path):
    on = gunicorn_log_options(create_app({"HOME": tmp_path}))
    off = gunicorn_log_options(create_app({"HOME": tmp_path, "ACCESS_LOG": False}))

    assert on["accesslog"] == "-" and off["accesslog"] is None
    assert on["errorlog"] == off["errorlog"] == "-"  # start-up and crashes: always shown


def test_serve_logs_requests_and_background_jobs_and_can_silence_requests(tmp_path):
    write_images(tmp_path / "photos", 12)
    home = prepare_home(tmp_path / "on", images=tmp_path / "photos")
    with ServerProcess(home.path, workers=1) as server:
        assert requests.get(f"{server.url}/auth/login?probe=on", timeout=10).status_code == 200
        # Its first scheduler pass embeds the new images, then ranks them: both logged.
        wait_for(lambda: "Round 1 of project 'crash'" in server.log(), "the round's line",
                 server=server)
    log = server.log()
    assert re.search(r'"GET /auth/login\?probe=on HTTP/1.1" 200 \d+ \d+ms', log), log
    assert re.search(r"Finished job #\d+ \(embed, project 'crash'\): succeeded in [\d.]+ s\. "
                     r"Embedded 12 images", log), log
    assert "Round 1 of project 'crash' ranked the pool for cold start" in log

    with ServerProcess(tmp_path / "off", workers=1, env={"LABELER_ACCESS_LOG": "0"}) as server:
        assert requests.get(f"{server.url}/auth/login?probe=off", timeout=10).status_code == 200
    log = server.log()
    assert "labeler is serving" in log and "probe=off" not in log, log
