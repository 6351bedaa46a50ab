"""Database set-up: engine options per backend, SQLite pragmas, migrations at start-up.

SQLite (a file in the data directory) is the default; PostgreSQL is the second supported
backend (``LABELER_DATABASE_URL=postgresql+psycopg://...``). Both run the same Alembic
revisions; nothing SQLite-specific is applied to a PostgreSQL connection.
"""

from __future__ import annotations

import sqlite3
import threading

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .resources import resource_dir

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A server process holds at most: waitress's threads (8 by default), one thread per job
# kind, and the scheduler. Ten pooled connections plus twenty overflow cover that with
# room for a larger --threads; beyond it a request waits up to POOL_TIMEOUT_S for one.
POOL_SIZE = 10
POOL_MAX_OVERFLOW = 20
POOL_TIMEOUT_S = 30
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
    """SQLAlchemy engine options for a database URL.

    SQLite: a busy timeout and connections shared across threads (the pool hands each to
    one thread at a time). Server databases: a pool sized for the server's threads, and a
    ping before each checkout, so a connection the server closed (restart, idle timeout)
    is replaced instead of failing a request.
    """
    if database_url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                 "check_same_thread": False}}
    options: dict[str, object] = {"pool_pre_ping": True, "pool_size": POOL_SIZE,
                                  "max_overflow": POOL_MAX_OVERFLOW,
                                  "pool_timeout": POOL_TIMEOUT_S}
    if database_url.startswith("postgresql"):
        # Names the connections in pg_stat_activity, so an operator can tell them apart.
        options["connect_args"] = {"application_name": "labeler"}
    return options


def upgrade_database(app: Flask) -> None:
    """Apply every Alembic revision not yet applied (idempotent; called at start-up)."""
    with _upgrade_lock, app.app_context():
        upgrade(directory=str(resource_dir("migrations")))
