"""Distributed embedding: one 2,000-image embed job with 1 worker, then with 2.

Starts its own ``redis-server`` (loopback, no persistence) and real ``labeler worker``
processes with the fake backbone (tests/worker_child.py), so it measures the queue, the
chunking, the database writes and the image decoding, not TensorFlow. Two settings:

- ``compute 0``: no model at all: the overhead of the distributed path by itself;
- ``compute D``: the fake backbone sleeps D s per batch of 32, a stand-in for a model that
  leaves the CPU free (a GPU, or another machine); a CPU-bound TensorFlow on the same two
  cores will not scale like this, because TF already uses both cores in one worker.

Time runs from submitting the job to its Job row reading succeeded (workers are started
and listening first). Prints one line per run and the speed-up.

    python bench/embed_workers.py [--count 2000] [--chunk 500] [--compute 0.05]
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run(count: int, chunk: int, compute: float, n_workers: int, redis_url: str,
        root: Path) -> float:
    """Seconds for one embed job of ``count`` images shared by ``n_workers`` workers."""
    from rq import Worker
    from sqlalchemy import select

    from labeler import create_app
    from labeler.database import upgrade_database
    from labeler.extensions import db
    from labeler.jobs import JobKind, runner
    from labeler.models import Job, JobChunk, JobStatus
    from labeler.project_vectors import embed_project
    from labeler.projects import create_project
    from tests.fakes import FAKE_BACKBONE
    from tests.redis_server import db_url
    from tests.worker_child import add_tiny_images, start_worker

    home = root / f"w{n_workers}-c{compute}"
    queue_url = db_url(redis_url)
    app = create_app({"HOME": home, "QUEUE_URL": queue_url, "LOG_LEVEL": "WARNING"})
    upgrade_database(app)
    env = {"LABELER_TEST_CHUNK_SIZE": str(chunk), "LABELER_TEST_EMBED_DELAY_S": str(compute)}
    with app.app_context():
        project = create_project("bench", ["a"], backbone=FAKE_BACKBONE)
        add_tiny_images(project.id, home, count)
        workers = [start_worker(home, queue_url, env=env) for _ in range(n_workers)]
        try:
            connection = runner(app).connection  # type: ignore[attr-defined]
            while len(Worker.all(connection=connection)) < n_workers:
                time.sleep(0.05)
            start = time.perf_counter()
            job = runner(app).submit(JobKind.EMBED, project.id, embed_project)
            while True:
                db.session.rollback()
                status = db.session.get(Job, job.id).status
                if status != JobStatus.RUNNING and status != JobStatus.QUEUED:
                    break
                time.sleep(0.02)
            seconds = time.perf_counter() - start
            assert status == JobStatus.SUCCEEDED, db.session.get(Job, job.id).message
            owners = {c for c in db.session.scalars(
                select(JobChunk.owner).where(JobChunk.job_id == job.id))}
        finally:
            for process in workers:
                process.send_signal(signal.SIGTERM)
            for process in workers:
                process.wait(60)
            db.session.remove()
            db.engine.dispose()
    print(f"compute {compute:<5} workers {n_workers}: {seconds:6.2f} s  "
          f"{count / seconds:7.0f} images/s  ({len(owners)} workers took chunks)", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--compute", type=float, default=0.05,
                        help="seconds the fake backbone sleeps per batch of 32")
    args = parser.parse_args()

    from tests.redis_server import RedisServer

    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        try:
            print(f"{args.count} images, chunks of {args.chunk}, fake backbone, "
                  f"redis at {server.url}", flush=True)
            for compute in (0.0, args.compute):
                one = run(args.count, args.chunk, compute, 1, server.url, Path(tmp))
                two = run(args.count, args.chunk, compute, 2, server.url, Path(tmp))
                print(f"compute {compute}: 2 workers are {one / two:.2f}x 1 worker", flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
