"""Database set-up: SQLite pragmas and applying Alembic migrations at start-up."""

from __future__ import annotations

import sqlite3
import threading

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .resources import resource_dir

SQLITE_BUSY_TIMEOUT_MS = 30_000
_upgrade_lock = threading.Lock()


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection: object, _record: object) -> None:
    """WAL (readers never wait for the writer), a busy timeout, and enforced foreign keys."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # NORMAL is durable in WAL mode except for the last commits before a power cut (never
    # an application crash); it makes each commit an order of magnitude cheaper.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def engine_options(database_url: str) -> dict[str, object]:
    """SQLAlchemy engine options for a database URL."""
    if database_url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                 "check_same_thread": False}}
    return {"pool_pre_ping": True}


def upgrade_database(app: Flask) -> None:
    """Apply every Alembic revision not yet applied (idempotent; called at start-up)."""
    with _upgrade_lock, app.app_context():
        upgrade(directory=str(resource_dir("migrations")))
