"""The login rate limit across processes: counted in the job queue's Redis when
``QUEUE_URL`` is set (a real ``redis-server``, two real ``labeler serve`` processes), and
logging in still works, still limited per process, when that Redis is down.

Without ``QUEUE_URL`` the count is per process (tests/test_security.py)."""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests

from labeler import create_app
from labeler.database import upgrade_database
from labeler.security import rate_limit_storage_uri
from labeler.users import create_user
from tests.dbutil import database_config
from tests.redis_server import db_url
from tests.serverproc import ServerProcess, free_port

LIMIT = "4 per hour"  # an hour, not a minute: a slow machine must not see a window reset


def attempt(server: ServerProcess, session: requests.Session) -> int:
    """One failed login through the real form (CSRF token included); the HTTP status."""
    form = session.get(f"{server.url}/auth/login", timeout=30).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
    assert token, form
    return session.post(f"{server.url}/auth/login", timeout=30, data={
        "csrf_token": token[1], "username": "nobody", "password": "a guess"}).status_code


def test_two_servers_on_one_redis_share_the_login_count(tmp_path: Path, redis_server: str):
    queue_url = db_url(redis_server)
    env = {"LABELER_QUEUE_URL": queue_url, "LABELER_LOGIN_RATE_LIMIT": LIMIT}
    # Two hosts, as far as the limit can tell: own data directories, one Redis.
    first = ServerProcess(tmp_path / "a", workers=1, env=env)
    second = ServerProcess(tmp_path / "b", workers=1, env=env)
    try:
        with ThreadPoolExecutor(2) as pool:  # start both at once: each takes a while
            list(pool.map(ServerProcess.start, (first, second)))
        one, two = requests.Session(), requests.Session()
        statuses = [attempt(first, one), attempt(second, two), attempt(first, one),
                    attempt(second, two), attempt(first, one), attempt(second, two)]
    finally:
        first.stop()
        second.stop()
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert redis.Redis.from_url(queue_url).keys("LIMITS*")  # counted there, not in memory


def test_with_redis_down_logging_in_works_and_stays_limited_per_process(tmp_path, caplog):
    queue_url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"  # nothing listens there
    app = create_app({"HOME": tmp_path, "TESTING": True, "WTF_CSRF_ENABLED": False,
                      "QUEUE_URL": queue_url, "LOGIN_RATE_LIMIT": "3 per hour",
                      **database_config(tmp_path)})
    upgrade_database(app)
    with app.app_context():
        create_user("target", "right-password")
    client = app.test_client()
    with caplog.at_level(logging.WARNING):
        logged_in = client.post("/auth/login",
                                data={"username": "target", "password": "right-password"})
    assert logged_in.status_code == 302
    client.post("/auth/logout")
    statuses = [client.post("/auth/login", data={"username": "target", "password": "guess"})
                .status_code for _ in range(3)]
    assert statuses == [200, 200, 429]  # the first login counted too: 3 per hour
    warning = next(r.getMessage() for r in caplog.records if r.name == "flask-limiter")
    assert "cannot reach Redis at redis://:***@127.0.0.1:" in warning
    assert "check that Redis is running and LABELER_QUEUE_URL is right" in warning
    assert "s3cret" not in caplog.text


def test_the_rate_limit_store_follows_the_queue_url():
    assert rate_limit_storage_uri({"QUEUE_URL": ""}) == "memory://"
    assert rate_limit_storage_uri({"QUEUE_URL": "redis://h:6379/2"}) == "redis://h:6379/2"
    assert rate_limit_storage_uri({"QUEUE_URL": "rediss://h/0"}) == "rediss://h/0"
    assert rate_limit_storage_uri({"QUEUE_URL": "unix:///run/redis.sock?db=1"}) == \
        "redis+unix:///run/redis.sock?db=1"
