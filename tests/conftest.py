"""Shared fixtures: an app on a temporary data directory, its clients, users, a project.

Helpers that build data (images, labels, hostile names) are in ``tests/builders.py``.

The database is SQLite unless ``LABELER_TEST_DATABASE_URL`` names a PostgreSQL server;
``tests.dbutil`` makes that choice for every app and child process a test starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from labeler import create_app
from labeler.database import upgrade_database
from labeler.extensions import db
from tests import dbutil
from tests.builders import PASSWORD, embedded_colour_project
from tests.redis_server import RedisServer, server_url_from_env


def pytest_report_header() -> str:
    url = dbutil.server_url()
    return f"database: {'PostgreSQL at ' + url.render_as_string() if url else 'SQLite'}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip tests about SQLite itself when the session runs on PostgreSQL."""
    marker = item.get_closest_marker("sqlite_only")
    if marker is not None and dbutil.on_postgres():
        pytest.skip(f"SQLite only: {marker.args[0] if marker.args else 'tests SQLite itself'}")


@pytest.fixture(autouse=True)
def _fresh_databases() -> Iterator[None]:
    """Drop the PostgreSQL databases a test created once it is over (no-op on SQLite)."""
    mark = dbutil.checkpoint()
    yield
    dbutil.drop_databases_since(mark)


@pytest.fixture(scope="session", autouse=True)
def _drop_session_databases() -> Iterator[None]:
    """Module-scoped apps' databases and the template go when the session ends."""
    yield
    dbutil.drop_all()


@contextmanager
def migrated_app(home: Path, **config: object) -> Iterator[Flask]:
    """A migrated test app on data directory ``home`` (and its own database), inside its
    app context; ``config`` adds to or overrides the test settings."""
    app = create_app({"HOME": home, "TESTING": True, "WTF_CSRF_ENABLED": False,
                      "IMPORT_WORKERS": 2, "LOGIN_RATE_LIMIT": "",
                      **dbutil.database_config(home), **config})
    upgrade_database(app)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(tmp_path: Path, _fresh_databases: None) -> Iterator[Flask]:
    """A migrated app whose data directory is a fresh temporary folder (and database)."""
    with migrated_app(tmp_path / "data") as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def lead(app: Flask):
    from labeler.users import create_user

    return create_user("lena", PASSWORD, "lead")


@pytest.fixture
def annotator(app: Flask):
    from labeler.users import create_user

    return create_user("arno", PASSWORD, "annotator")


def login(client: FlaskClient, username: str, password: str = PASSWORD):
    return client.post("/auth/login", data={"username": username, "password": password})


@pytest.fixture
def lead_client(client: FlaskClient, lead) -> FlaskClient:
    response = login(client, lead.username)
    assert response.status_code == 302, response.text
    return client


@pytest.fixture
def project(app, tmp_path):
    """Project "colours": 8 noisy images of each of 3 colours, embedded (fake backbone)."""
    return embedded_colour_project(tmp_path / "in", per_colour=8, seed_step=3)


@pytest.fixture
def token(app):
    """An API token of annotator "ann"."""
    from labeler.users import create_api_token, create_user

    return create_api_token(create_user("ann", "password-123"))


@pytest.fixture
def alice(app):
    """Annotator "alice"."""
    from labeler.users import create_user

    return create_user("alice", "password-1", "annotator")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The CI's Redis (LABELER_TEST_REDIS_URL), else a redis-server started for the session."""
    if url := server_url_from_env():
        yield url
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server.url
    finally:
        server.stop()
