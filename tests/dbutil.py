"""Which database a test runs on: SQLite by default, PostgreSQL when the suite asks for it.

With ``LABELER_TEST_DATABASE_URL`` unset, every app uses its default SQLite file in its
data directory. With it set to a PostgreSQL server URL (``.ci/services.sh`` starts one),
every data directory a test uses gets its own fresh database, cloned from a template that
is migrated once per session (``CREATE DATABASE ... TEMPLATE`` copies files: far cheaper
than replaying the migrations per test), and dropped when the test ends.

Everything that builds an app or starts a child process asks this module, so the choice of
database is made in one place: ``database_config(home)`` for ``create_app`` overrides,
``database_env(home)`` for child processes.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import NullPool

SERVER_URL_VAR = "LABELER_TEST_DATABASE_URL"
# The pid keeps two sessions that share one server (two checkouts, a developer's shell and
# CI) from dropping each other's databases.
_PREFIX = f"labeler_test_{os.getpid()}"
TEMPLATE = f"{_PREFIX}_template"

_counter = itertools.count(1)
_by_home: dict[Path, str] = {}  # data directory -> its database URL
_created: list[tuple[str, Path]] = []  # (database, home) in order of creation
_template_ready = False


def server_url() -> URL | None:
    """The PostgreSQL server the suite runs against, or None for SQLite."""
    raw = os.environ.get(SERVER_URL_VAR, "").strip()
    return make_url(raw) if raw else None


def on_postgres() -> bool:
    """Whether this session runs on PostgreSQL."""
    return server_url() is not None


def _admin_engine() -> Engine:
    url = server_url()
    assert url is not None
    # CREATE/DROP DATABASE cannot run inside a transaction.
    return create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _url_for(name: str) -> str:
    url = server_url()
    assert url is not None
    return url.set(database=name).render_as_string(hide_password=False)


def _create(name: str, template: str | None) -> None:
    clause = f" TEMPLATE {template}" if template else ""
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    finally:
        engine.dispose()


def _ensure_template() -> None:
    """Create and migrate the template database, once per session."""
    global _template_ready
    if _template_ready:
        return
    from labeler import create_app
    from labeler.database import upgrade_database
    from labeler.extensions import db

    _create(TEMPLATE, None)
    with tempfile.TemporaryDirectory(prefix="labeler-template-") as home:
        app = create_app({"HOME": Path(home), "DATABASE_URL": _url_for(TEMPLATE)})
        upgrade_database(app)
        with app.app_context():
            # A template with open connections cannot be copied.
            db.engine.dispose()
    _template_ready = True


def _new_database(home: Path, *, empty: bool) -> str:
    """A fresh database for ``home``: a copy of the migrated template, or ``empty``."""
    name = f"{_PREFIX}_{next(_counter)}"
    if not empty:
        _ensure_template()
    _create(name, None if empty else TEMPLATE)
    _created.append((name, home))
    return _url_for(name)


def database_config(home: Path, *, empty: bool = False) -> dict[str, str]:
    """``create_app`` overrides that put the app for ``home`` on this session's database.

    On SQLite this is empty (the app's default file in ``home``). On PostgreSQL the same
    ``home`` gets the same database for as long as it lives (the test, or the scope of the
    fixture that asked first), so an app, a CLI run and a server
    child started on one data directory share their data as they would in production.
    """
    if not on_postgres():
        return {}
    home = Path(home).resolve()
    if home not in _by_home:
        _by_home[home] = _new_database(home, empty=empty)
    return {"DATABASE_URL": _by_home[home]}


def database_env(home: Path, *, empty: bool = False) -> dict[str, str]:
    """Environment variables that give a child process on ``home`` the same database."""
    config = database_config(home, empty=empty)
    return {f"LABELER_{key}": value for key, value in config.items()}


def migrated_tables(url: str) -> list[str]:
    """Table names in the database at ``url`` (to check that a child process migrated it)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


def checkpoint() -> int:
    """A mark for ``drop_databases_since``: how many databases exist so far."""
    return len(_created)


def drop_databases_since(mark: int = 0) -> None:
    """Drop the databases created after ``mark`` (open connections are closed by force).

    A test drops what it created; a module- or session-scoped fixture's database was
    created before the test's mark and lives until its own scope ends.
    """
    if len(_created) <= mark:
        return
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            while len(_created) > mark:
                name, home = _created.pop()
                _by_home.pop(home, None)
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def drop_all() -> None:
    """Drop every database of this session, the template last (end of session)."""
    global _template_ready
    drop_databases_since(0)
    if on_postgres() and _template_ready:
        engine = _admin_engine()
        try:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)'))
        finally:
            engine.dispose()
        _template_ready = False
