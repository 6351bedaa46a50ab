"""The multi-label revision (6a7afa1e819e): up over existing labels, down, and the queue
index's condition. Runs on SQLite, and on PostgreSQL when the session uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from labeler import create_app
from labeler.extensions import db
from labeler.resources import resource_dir
from tests.dbutil import database_config

BEFORE = "7d3a9c51e2b8"
REVISION = "6a7afa1e819e"


def _seed_single_label(connection) -> None:
    connection.execute(text(
        "INSERT INTO project (id, name, settings, created_at) "
        "VALUES (1, 'old', '{}', CURRENT_TIMESTAMP)"))
    connection.execute(text(
        "INSERT INTO label_class (id, project_id, name, colour, position, archived, created_at)"
        " VALUES (1, 1, 'cat', '#000000', 0, false, CURRENT_TIMESTAMP)"))
    connection.execute(text(
        "INSERT INTO image (id, project_id, sha256, original_name, format, width, height, "
        "size_bytes, created_at, label_class_id, suspected_error) VALUES "
        "(1, 1, 'a', 'a.png', 'PNG', 1, 1, 1, CURRENT_TIMESTAMP, 1, false), "
        "(2, 1, 'b', 'b.png', 'PNG', 1, 1, 1, CURRENT_TIMESTAMP, NULL, false)"))
    connection.execute(text(
        "INSERT INTO annotation (id, project_id, image_id, label_class_id, source, created_at)"
        " VALUES (1, 1, 1, 1, 'manual', CURRENT_TIMESTAMP)"))


def _queue_index_condition(connection) -> str:
    if connection.dialect.name == "sqlite":
        return connection.execute(text(
            "SELECT sql FROM sqlite_master WHERE name = 'ix_image_queue'")).scalar_one()
    return connection.execute(text(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_image_queue'")).scalar_one()


def test_revision_keeps_single_label_history_and_goes_down_and_up(tmp_path: Path) -> None:
    app = create_app({"HOME": tmp_path, **database_config(tmp_path, empty=True)})
    directory = str(resource_dir("migrations"))
    with app.app_context():
        try:
            upgrade(directory=directory, revision=BEFORE)
            with db.engine.begin() as connection:
                _seed_single_label(connection)
            upgrade(directory=directory, revision=REVISION)
            with db.engine.begin() as connection:
                assert "tagged_at" in _queue_index_condition(connection)
                assert connection.execute(text(
                    "SELECT label_class_id FROM annotation")).scalar_one() == 1
                assert connection.execute(text(
                    "SELECT multi_label FROM project")).scalar_one() in (False, 0)
                # An annotation without a class is now allowed (a tag set's row).
                connection.execute(text(
                    "INSERT INTO annotation (id, project_id, image_id, label_class_id, source,"
                    " created_at) VALUES (2, 1, 2, NULL, 'manual', CURRENT_TIMESTAMP)"))
                connection.execute(text("DELETE FROM annotation WHERE id = 2"))
            tables = set(inspect(db.engine).get_table_names())
            assert {"annotation_tag", "image_tag", "image_tag_score"} <= tables

            downgrade(directory=directory, revision=BEFORE)
            with db.engine.begin() as connection:
                assert "tagged_at" not in _queue_index_condition(connection)
                assert connection.execute(text(
                    "SELECT label_class_id FROM annotation")).scalar_one() == 1
            assert "image_tag" not in set(inspect(db.engine).get_table_names())
            upgrade(directory=directory)
        finally:
            db.engine.dispose()


def test_downgrade_refuses_while_a_multi_label_project_exists(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app({"HOME": tmp_path, **database_config(tmp_path, empty=True)})
    directory = str(resource_dir("migrations"))
    with app.app_context():
        try:
            upgrade(directory=directory, revision=REVISION)
            with db.engine.begin() as connection:
                connection.execute(text(
                    "INSERT INTO project (name, settings, created_at, multi_label) "
                    "VALUES ('tags', '{}', CURRENT_TIMESTAMP, true)"))
            with pytest.raises(SystemExit):  # Flask-Migrate logs the error and exits
                downgrade(directory=directory, revision=BEFORE)
            assert "multi-label projects exist ('tags')" in caplog.text
            assert "image_tag" in set(inspect(db.engine).get_table_names())
        finally:
            db.engine.dispose()


@pytest.mark.sqlite_only("reads SQLite's query plan")
def test_the_queue_condition_is_answered_from_the_partial_index(app) -> None:
    from sqlalchemy import select

    from labeler.models import Image

    statement = (select(Image.id).where(Image.project_id == 1, Image.unlabelled)
                 .order_by(Image.queue_rank, Image.id).limit(5))
    compiled = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.engine.connect() as connection:
        plan = " ".join(str(row) for row in connection.execute(
            text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_image_queue" in plan, plan
