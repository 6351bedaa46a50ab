"""The schema comes from Alembic migrations, matches the models, and SQLite is set up right.

Runs on PostgreSQL too (``LABELER_TEST_DATABASE_URL``), except the checks of SQLite itself.
"""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from labeler import create_app
from labeler.database import upgrade_database
from labeler.extensions import db
from tests.dbutil import database_config


def test_upgrading_an_empty_database_gives_exactly_the_models_schema(tmp_path):
    app = create_app({"HOME": tmp_path, **database_config(tmp_path, empty=True)})
    with app.app_context():
        assert inspect(db.engine).get_table_names() == []  # create_app creates nothing
    upgrade_database(app)
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
        assert diff == [], f"models and migrations differ; run `labeler db migrate`: {diff}"
        db.engine.dispose()


def schema_of(engine) -> dict[str, dict[str, list[str]]]:
    """Every table's columns (name and type) and index names, as the database reports them."""
    inspector = inspect(engine)
    return {table: {"columns": sorted(f"{c['name']} {c['type']}"
                                      for c in inspector.get_columns(table)),
                    "indexes": sorted(i["name"] for i in inspector.get_indexes(table))}
            for table in inspector.get_table_names()}


def test_upgrade_is_idempotent(app):
    before = schema_of(db.engine)
    upgrade_database(app)
    upgrade_database(app)
    assert "alembic_version" in inspect(db.engine).get_table_names()
    after = schema_of(db.engine)
    assert after == before  # running the migrations again changed nothing

    # ...and what they built is the models' schema: every table, column and index.
    assert set(after) - {"alembic_version"} == set(db.metadata.tables)
    for name, table in db.metadata.tables.items():
        assert [c.split()[0] for c in after[name]["columns"]] == sorted(table.columns.keys())
        assert {index.name for index in table.indexes} <= set(after[name]["indexes"]), name


@pytest.mark.sqlite_only("WAL, busy timeout and foreign-key pragmas exist only in SQLite")
def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_busy_timeout(app):
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


@pytest.mark.sqlite_only("the default database is a file in the data directory")
def test_database_is_a_real_file_in_the_data_dir(app):
    assert (app.config["HOME"] / "labeler.sqlite3").exists()


def test_foreign_keys_are_enforced(app):
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        db.session.execute(text(
            "INSERT INTO label_class (project_id, name, colour, position, archived, created_at)"
            " VALUES (999, 'x', '#000000', 0, FALSE, '2026-01-01')"))
        db.session.commit()
    db.session.rollback()
