"""PostgreSQL as the second backend: what differs from SQLite, tested on both.

Every test here runs on whichever database the session uses (SQLite by default, a
PostgreSQL server when ``LABELER_TEST_DATABASE_URL`` is set): concurrent leasing, the
64-bit queue ranks, migrations down and up, and the engine options per backend.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, inspect, select

from labeler import create_app
from labeler.database import engine_options
from labeler.extensions import db
from labeler.models import Annotation, Image, Project, User
from labeler.projects import class_by_name, create_project
from labeler.queue import SKIPPED_BASE, LeaseConflict, lease_next, submit_label
from labeler.resources import resource_dir
from labeler.users import create_user
from tests.dbutil import database_config

N_ANNOTATORS = 8
N_IMAGES = 160
BATCH = 2


def _add_images(project: Project, count: int) -> None:
    db.session.add_all(
        Image(project_id=project.id, sha256=f"{i:064x}", original_name=f"{i}.png",
              format="PNG", width=8, height=8, size_bytes=100, queue_rank=i)
        for i in range(count))
    db.session.commit()


def test_concurrent_annotators_never_get_the_same_image(app: Flask) -> None:
    """Eight annotators, each on its own thread, session and connection, lease and label
    until the queue is empty: every image is handed out once, and no label is refused."""
    project = create_project("race", ["a", "b"])
    _add_images(project, N_IMAGES)
    user_ids = [create_user(f"annotator{k}", "long-password-1").id for k in range(N_ANNOTATORS)]
    project_id = project.id
    handed_out: dict[int, list[int]] = {user_id: [] for user_id in user_ids}
    errors: list[BaseException] = []
    start = threading.Barrier(N_ANNOTATORS)

    def annotate(user_id: int) -> None:
        with app.app_context():  # a session (and pooled connection) of this thread's own
            try:
                project = db.session.get(Project, project_id)
                user = db.session.get(User, user_id)
                label = class_by_name(project, "a")
                start.wait()
                while batch := lease_next(project, user, n=BATCH):
                    for image in batch:
                        handed_out[user_id].append(image.id)
                        submit_label(project, image.id, label, user)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=annotate, args=(u,)) for u in user_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors, errors  # a LeaseConflict here means an image was leased twice
    times_handed_out = Counter(i for ids in handed_out.values() for i in ids)
    assert len(times_handed_out) == N_IMAGES
    assert set(times_handed_out.values()) == {1}
    per_image = db.session.execute(
        select(Annotation.image_id, func.count()).group_by(Annotation.image_id)).all()
    assert len(per_image) == N_IMAGES and {count for _, count in per_image} == {1}
    # More than one annotator got work, so the leases really did run side by side.
    assert sum(1 for ids in handed_out.values() if ids) > 1


def test_a_live_lease_is_not_taken_by_another_annotator(app: Flask) -> None:
    project = create_project("held", ["a"])
    _add_images(project, 3)
    first, second = create_user("first", "long-password-1"), create_user("second",
                                                                        "long-password-1")
    mine = lease_next(project, first, n=2)
    leased = select(func.count()).select_from(Image).where(Image.leased_to_id.is_not(None))
    assert db.session.scalar(leased) == 2  # exactly n rows reserved, not every free one
    theirs = lease_next(project, second, n=3)
    assert {i.id for i in mine}.isdisjoint(i.id for i in theirs)
    assert len(theirs) == 1
    with pytest.raises(LeaseConflict):
        submit_label(project, mine[0].id, class_by_name(project, "a"), second)


def test_queue_ranks_beyond_32_bits_are_stored(app: Flask) -> None:
    """Skipped images rank at 2e9 + id; past 2**31 a 32-bit column would refuse them."""
    project = create_project("ranks", ["a"])
    _add_images(project, 2)
    image = db.session.scalars(select(Image).order_by(Image.id)).first()
    image.queue_rank = SKIPPED_BASE + 500_000_000  # > 2**31 - 1
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Image, image.id).queue_rank == 2_500_000_000
    first = db.session.scalars(select(Image).order_by(Image.queue_rank)).first()
    assert first.id != image.id  # ordered as integers, after the ranked image


def test_migrations_go_down_to_nothing_and_back_up(tmp_path: Path) -> None:
    app = create_app({"HOME": tmp_path, **database_config(tmp_path, empty=True)})
    directory = str(resource_dir("migrations"))
    with app.app_context():
        try:
            upgrade(directory=directory)
            downgrade(directory=directory, revision="base")
            assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
            upgrade(directory=directory)
            tables = set(inspect(db.engine).get_table_names())
            assert {"image", "annotation", "job", "project", "user"} <= tables
        finally:
            db.engine.dispose()


def test_engine_options_per_backend() -> None:
    sqlite = engine_options("sqlite:////tmp/x.sqlite3")
    assert sqlite["connect_args"]["check_same_thread"] is False
    postgres = engine_options("postgresql+psycopg://u@127.0.0.1:5432/labeler")
    # Nothing SQLite-specific reaches psycopg (it would refuse unknown connect arguments).
    assert postgres["connect_args"] == {"application_name": "labeler"}
    assert postgres["pool_pre_ping"] is True
    # Enough connections for waitress's 8 threads, the job threads and the scheduler.
    assert postgres["pool_size"] + postgres["max_overflow"] >= 8 + 4
