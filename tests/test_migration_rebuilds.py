"""Upgrades never lose rows to SQLite's table rebuilds.

SQLite's batch migrations copy a table, drop the old one and rename the copy. With foreign
keys enforced, the drop cascades to every row referring to the old table: rebuilding
`image` (revision a5a077d30fbf) deleted every annotation, and rebuilding `annotation`
(c5e1f0a93b72, d2a7b4c8e913) every tag set of a multi-label annotation. migrations/env.py
turns the keys off while migrating and checks them before committing; these tests upgrade
populated databases through each rebuild. (On PostgreSQL, which alters in place, they
pass trivially.)
"""

from __future__ import annotations

from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import text

from labeler import create_app
from labeler.extensions import db
from labeler.resources import resource_dir
from tests.dbutil import database_config

BEFORE_IMAGE_REBUILD = "27b50dddc291"
MULTI_LABEL = "6a7afa1e819e"


def _app(tmp_path: Path):
    return create_app({"HOME": tmp_path, **database_config(tmp_path, empty=True)})


def _count(connection, table: str) -> int:
    return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_rebuilding_the_image_table_keeps_every_annotation(tmp_path: Path) -> None:
    app = _app(tmp_path)
    directory = str(resource_dir("migrations"))
    with app.app_context():
        upgrade(directory=directory, revision=BEFORE_IMAGE_REBUILD)
        with db.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO project (id, name, settings, created_at) "
                "VALUES (1, 'old', '{}', CURRENT_TIMESTAMP)"))
            connection.execute(text(
                "INSERT INTO label_class (id, project_id, name, colour, position, archived, "
                "created_at) VALUES (1, 1, 'cat', '#000000', 0, false, CURRENT_TIMESTAMP)"))
            connection.execute(text(
                "INSERT INTO image (id, project_id, sha256, original_name, format, width, "
                "height, size_bytes, created_at, label_class_id) VALUES "
                "(1, 1, 'a', 'a.png', 'PNG', 1, 1, 1, CURRENT_TIMESTAMP, 1)"))
            connection.execute(text(
                "INSERT INTO annotation (id, project_id, image_id, label_class_id, source, "
                "created_at) VALUES (1, 1, 1, 1, 'manual', CURRENT_TIMESTAMP)"))
        upgrade(directory=directory)
        with db.engine.connect() as connection:
            assert _count(connection, "annotation") == 1
            assert connection.execute(text(
                "SELECT label_class_id FROM image")).scalar_one() == 1
            if connection.dialect.name == "sqlite":  # and the app's connections enforce again
                assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1


def test_rebuilding_the_annotation_table_keeps_every_tag_set(tmp_path: Path) -> None:
    app = _app(tmp_path)
    directory = str(resource_dir("migrations"))
    with app.app_context():
        upgrade(directory=directory, revision=MULTI_LABEL)
        with db.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO project (id, name, settings, created_at, multi_label) "
                "VALUES (1, 'tags', '{}', CURRENT_TIMESTAMP, true)"))
            connection.execute(text(
                "INSERT INTO label_class (id, project_id, name, colour, position, archived, "
                "created_at) VALUES (1, 1, 'sea', '#000000', 0, false, CURRENT_TIMESTAMP), "
                "(2, 1, 'sky', '#ffffff', 1, false, CURRENT_TIMESTAMP)"))
            connection.execute(text(
                "INSERT INTO image (id, project_id, sha256, original_name, format, width, "
                "height, size_bytes, created_at, suspected_error, tagged_at) VALUES "
                "(1, 1, 'a', 'a.png', 'PNG', 1, 1, 1, CURRENT_TIMESTAMP, false, "
                "CURRENT_TIMESTAMP)"))
            connection.execute(text(
                "INSERT INTO annotation (id, project_id, image_id, label_class_id, source, "
                "created_at) VALUES (1, 1, 1, NULL, 'manual', CURRENT_TIMESTAMP)"))
            connection.execute(text(
                "INSERT INTO annotation_tag (annotation_id, label_class_id) VALUES (1, 1), (1, 2)"))
            connection.execute(text(
                "INSERT INTO image_tag (image_id, label_class_id) VALUES (1, 1), (1, 2)"))
        upgrade(directory=directory)
        with db.engine.connect() as connection:
            assert _count(connection, "annotation") == 1
            assert _count(connection, "annotation_tag") == 2
            assert _count(connection, "image_tag") == 2
