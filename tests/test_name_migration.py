"""The data migration that rewrites stored server paths into names relative to the import,
run on a database built at the revision before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask_migrate import downgrade, upgrade
from sqlalchemy import select

from labeler import create_app
from labeler.extensions import db
from labeler.models import Image, Project
from labeler.resources import resource_dir
from tests.dbutil import database_config

BEFORE = "e4c81b6f0a27"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

# (project, stored name, seconds after T0, name after the migration)
ROWS = [
    # One folder import: relative to the folder holding all its files, after its name.
    (1, "/srv/photos/holiday/beach.jpg", 0, "holiday/beach.jpg"),
    (2, "/data/other/z.png", 0, "other/z.png"),  # another project importing meanwhile
    (1, "/srv/photos/holiday/2024/dunes.jpg", 1, "holiday/2024/dunes.jpg"),
    (1, "/srv/photos/holiday/trip.zip!day1/boat.png", 2, "holiday/trip.zip!day1/boat.png"),
    (2, "/data/other/y.png", 2, "other/y.png"),
    (1, "upload.png", 3, "upload.png"),  # an upload in between: left alone, ends the batch
    # One zip: its name and the entry's path.
    (1, "/srv/up/album.zip!harbour.png", 4, "album.zip!harbour.png"),
    (1, "/srv/up/album.zip!inside/x.png", 4, "album.zip!inside/x.png"),
    # An hour later, one file of the same folder: a batch of its own, its base name.
    (1, "/srv/up/single.png", 3600, "single.png"),
    # Files from unrelated places (common folder: the root): base names only.
    (1, "/home/alice/a.png", 7200, "a.png"),
    (1, "/mnt/nas/b.png", 7201, "b.png"),
    # Relative to where the CLI ran, and Windows paths.
    (1, "../photos/cats/c.png", 10800, "photos/cats/c.png"),
    (1, "../photos/dogs/d.png", 10801, "photos/dogs/d.png"),
    (1, "C:\\Users\\me\\pics\\w.png", 14400, "pics/w.png"),
    (1, "C:\\Users\\me\\pics\\sub\\v.png", 14401, "pics/sub/v.png"),
    # Already relative (the demo, an import run from the folder's parent): untouched.
    (1, "fashion-mnist/00001.png", 18000, "fashion-mnist/00001.png"),
    (1, "holiday/beach.jpg", 18001, "holiday/beach.jpg"),
]


def test_server_paths_become_names_relative_to_their_import(tmp_path: Path) -> None:
    app = create_app({"HOME": tmp_path, **database_config(tmp_path, empty=True)})
    directory = str(resource_dir("migrations"))
    with app.app_context():
        try:
            upgrade(directory=directory, revision=BEFORE)
            with db.engine.begin() as connection:
                connection.execute(Project.__table__.insert(),
                                   [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}])
                connection.execute(Image.__table__.insert(), [
                    {"id": index, "project_id": project, "sha256": f"{index:064x}",
                     "original_name": name, "format": "PNG", "width": 1, "height": 1,
                     "size_bytes": 1, "created_at": T0 + timedelta(seconds=seconds)}
                    for index, (project, name, seconds, _) in enumerate(ROWS, 1)])

            upgrade(directory=directory)

            with db.engine.connect() as connection:
                names = dict(connection.execute(select(Image.id, Image.original_name)).all())
            assert names == {index: after for index, (*_, after) in enumerate(ROWS, 1)}

            downgrade(directory=directory, revision=BEFORE)  # keeps the names: nothing to undo
            with db.engine.connect() as connection:
                assert dict(connection.execute(select(Image.id, Image.original_name)).all()) \
                    == names
        finally:
            db.engine.dispose()
