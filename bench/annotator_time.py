"""Cost of the dashboard's per-annotator report at a million annotations.

In-process, on a real SQLite file (or ``--database-url`` for PostgreSQL): one project with
``--annotations`` labels from 20 annotators working in sessions (a few seconds between
labels, pauses of minutes to hours, about 9 months of work), then times
``labeler.reports.annotator_reports`` as the dashboard calls it: labels kept over all time,
active time from ``LAG`` over the last 7 days. Same run, for comparison: the same report
with the window opened to all time (``LAG`` over every annotation), the five-minute-bucket
count the dashboard used before (one aggregate, wrong answer), and the gaps computed in
Python after reading every annotation's timestamp (the naive way to the right answer).

    python bench/annotator_time.py [--annotations 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Integer, cast, func, insert, select

ANNOTATORS = 20
IMAGES = 100_000


def build(project_id: int, class_id: int, user_ids: list[int], annotations: int) -> None:
    """Images, then ``annotations`` labels in sessions, inserted in large batches."""
    from labeler.extensions import db
    from labeler.models import Annotation, Image

    images = [{"project_id": project_id, "sha256": f"{i:064x}", "original_name": f"{i}.png",
               "format": "PNG", "width": 28, "height": 28, "size_bytes": 500}
              for i in range(IMAGES)]
    for start in range(0, IMAGES, 20_000):
        db.session.execute(insert(Image), images[start:start + 20_000])
    first_image = db.session.scalar(select(func.min(Image.id)))
    rng = np.random.default_rng(0)
    per_user = annotations // len(user_ids)
    origin = datetime(2024, 1, 1, tzinfo=UTC)
    for n, user_id in enumerate(user_ids):
        # 95 % of gaps: 1-8 s of labelling; 4 %: a short break; 1 %: hours away.
        gaps = rng.uniform(1, 8, per_user)
        gaps[rng.random(per_user) < 0.04] = rng.uniform(300, 1800)
        gaps[rng.random(per_user) < 0.01] = rng.uniform(3600, 86_400)
        seconds = np.cumsum(gaps)
        rows = [{"project_id": project_id, "image_id": first_image + (n * per_user + i) % IMAGES,
                 "label_class_id": class_id, "annotator_id": user_id, "source": "manual",
                 "created_at": origin + timedelta(seconds=float(seconds[i]))}
                for i in range(per_user)]
        for start in range(0, per_user, 50_000):
            db.session.execute(insert(Annotation), rows[start:start + 50_000])
    db.session.commit()


def bucket_baseline(project_id: int) -> list[tuple]:
    """The old report: distinct five-minute buckets per annotator (one aggregate)."""
    from labeler.extensions import db
    from labeler.models import Annotation

    if db.engine.dialect.name == "sqlite":
        bucket = cast(func.strftime("%s", Annotation.created_at), Integer) / 300
    else:
        bucket = func.floor(func.extract("epoch", Annotation.created_at) / 300)
    return db.session.execute(
        select(Annotation.annotator_id, func.count(), func.count(func.distinct(bucket)))
        .where(Annotation.project_id == project_id, Annotation.undone_at.is_(None))
        .group_by(Annotation.annotator_id)).all()


def python_baseline(project_id: int) -> dict[int, object]:
    """The right answer the naive way: every timestamp into Python, gaps computed there."""
    from labeler.extensions import db
    from labeler.models import Annotation
    from labeler.reports import activity_of

    times: dict[int, list[datetime]] = defaultdict(list)
    for user_id, created_at in db.session.execute(
            select(Annotation.annotator_id, Annotation.created_at)
            .where(Annotation.project_id == project_id)):
        times[user_id].append(created_at)
    return {user_id: activity_of(values) for user_id, values in times.items()}


def timed(function, repeat: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default="", help="default: a SQLite file")
    args = parser.parse_args()

    from labeler import create_app
    from labeler.database import upgrade_database
    from labeler.extensions import db
    from labeler.models import Annotation
    from labeler.projects import create_project
    from labeler.reports import annotator_reports
    from labeler.users import create_user

    with tempfile.TemporaryDirectory() as home:
        config = {"HOME": Path(home), "LOG_LEVEL": "WARNING"}
        if args.database_url:
            config["DATABASE_URL"] = args.database_url
        app = create_app(config)
        upgrade_database(app)
        with app.app_context():
            project = create_project("bench", ["a", "b"])
            users = [create_user(f"annotator{i}", "password-123") for i in range(ANNOTATORS)]
            started = time.perf_counter()
            build(project.id, project.classes[0].id, [u.id for u in users], args.annotations)
            print(f"built {args.annotations:,} annotations by {ANNOTATORS} annotators in "
                  f"{time.perf_counter() - started:.0f} s ({app.config['DATABASE_URL']})")

            now = db.session.scalar(select(func.max(Annotation.created_at)))
            report_s, _ = timed(lambda: annotator_reports(project.id, now), args.repeat)
            all_time_s, reports = timed(lambda: annotator_reports(
                project.id, now, window=timedelta(days=36_500)), args.repeat)
            bucket_s, _ = timed(lambda: bucket_baseline(project.id), args.repeat)
            python_s, naive = timed(lambda: python_baseline(project.id), args.repeat)
            by_id = {u.username: u.id for u in users}
            worst = max(abs(r.activity.working_seconds - naive[by_id[r.username]]
                            .working_seconds) for r in reports)
            print(f"annotator_reports, rates over 7 days : {report_s * 1000:8.0f} ms (median "
                  f"of {args.repeat})")
            print(f"annotator_reports, rates over all time: {all_time_s * 1000:8.0f} ms")
            print(f"baseline: old five-minute buckets     : {bucket_s * 1000:8.0f} ms")
            print(f"baseline: all gaps computed in Python : {python_s * 1000:8.0f} ms")
            print(f"all-time LAG vs Python gaps, largest difference: {worst:.3f} s of work")

if __name__ == "__main__":
    main()
