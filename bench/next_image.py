"""Latency of serving the next image from the precomputed queue, at a 100,000-image pool.

In-process, on a real SQLite file: leases the next image for one of 8 annotators and
labels it, over and over, timing ``lease_next`` alone. Baseline in the same run: the same
selection done the naive way, a query that sorts the pool by its acquisition score
(no queue index), as a tool that rescored at request time would at best do.

Goal: p99 ≤ 20 ms.

    python bench/next_image.py [--pool 100000] [--requests 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert, text

GOAL_P99_MS = 20.0


def build_pool(project_id: int, size: int, class_id: int) -> None:
    from labeler.extensions import db
    from labeler.models import Image

    rng = np.random.default_rng(0)
    ranks = rng.permutation(size)
    scores = rng.random(size)
    rows = [{"project_id": project_id, "sha256": f"{i:064x}", "original_name": f"img{i}.jpg",
             "format": "JPEG", "width": 640, "height": 480, "size_bytes": 50_000,
             "queue_rank": int(ranks[i]), "acquisition_score": float(scores[i]),
             "predicted_class_id": class_id, "confidence": float(1 - scores[i] / 2)}
            for i in range(size)]
    for start in range(0, size, 10_000):
        db.session.execute(insert(Image), rows[start:start + 10_000])
    db.session.commit()


def percentiles(samples: list[float]) -> tuple[float, float]:
    values = np.array(samples) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    from labeler import create_app
    from labeler.database import upgrade_database
    from labeler.extensions import db
    from labeler.projects import create_project
    from labeler.queue import lease_next, submit_label
    from labeler.users import create_user

    with tempfile.TemporaryDirectory() as home:
        app = create_app({"HOME": Path(home), "LOG_LEVEL": "WARNING"})
        upgrade_database(app)
        with app.app_context():
            project = create_project("bench", ["a", "b"])
            build_pool(project.id, args.pool, project.classes[0].id)
            users = [create_user(f"annotator{i}", "password-123") for i in range(8)]
            classes = project.classes

            lease_times: list[float] = []
            for request in range(args.requests):
                user = users[request % len(users)]
                started = time.perf_counter()
                (image,) = lease_next(project, user, n=1)
                lease_times.append(time.perf_counter() - started)
                submit_label(project, image.id, classes[request % 2], user)

            naive = text("SELECT id FROM image WHERE project_id = :p AND label_class_id IS NULL "
                         "ORDER BY acquisition_score DESC LIMIT 1")
            naive_times: list[float] = []
            for _ in range(200):
                started = time.perf_counter()
                db.session.execute(naive, {"p": project.id}).scalar()
                naive_times.append(time.perf_counter() - started)

    p50, p99 = percentiles(lease_times)
    b50, b99 = percentiles(naive_times)
    print(f"pool {args.pool} images, {args.requests} lease+label cycles, 8 annotators")
    print(f"baseline (sort by score per request, select only): p50 {b50:6.2f} ms  "
          f"p99 {b99:6.2f} ms")
    print(f"labeler lease_next (queue index, lease written):  p50 {p50:6.2f} ms  "
          f"p99 {p99:6.2f} ms")
    print(f"goal p99 <= {GOAL_P99_MS:.0f} ms: {'met' if p99 <= GOAL_P99_MS else 'MISSED'}")


if __name__ == "__main__":
    main()
