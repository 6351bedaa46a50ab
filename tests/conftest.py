"""Shared fixtures: an app on a temporary data directory, its clients, and users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from labeler import create_app
from labeler.database import upgrade_database
from labeler.extensions import db

PASSWORD = "correct-horse-battery"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """A migrated app whose data directory is a fresh temporary folder."""
    app = create_app({"HOME": tmp_path / "data", "TESTING": True, "WTF_CSRF_ENABLED": False,
                      "IMPORT_WORKERS": 2, "LOGIN_RATE_LIMIT": ""})
    upgrade_database(app)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


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
