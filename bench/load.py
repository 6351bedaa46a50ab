"""Concurrent annotators against ``labeler serve``: throughput, latency, and the three zeros.

Prepares a data home with a 20,000-image project (small generated PNGs through the real
importer, embedded at the real backbone's width of 1280), starts the real server (gunicorn
workers, scheduler, background jobs) in a child process on loopback, and runs N annotator clients,
each with its own account and API token, labelling through the REST API for a bounded time.
A lead triggers a retrain half-way. Then it prints requests/s, labels/s, p50/p99 of
``next`` and of a label POST, and checks the database for the three things that must be
zero: 5xx answers, images handed to two annotators at once, acknowledged labels lost.

Baseline in the same run: the same server with one annotator (what the hardware does
without contention). Reference, measured on this machine and quoted, not re-run here:
Label Studio 1.23.2 on SQLite with 8 annotators, ≈ 3 images/s, next-task p99 7–12 s, and
4–7 % of tasks labelled twice.

Goals at 8 clients: 0 / 0 / 0, p99 of ``next`` ≤ 100 ms, ≥ 90 labels/s.

    python bench/load.py [--clients 1,8] [--duration 60] [--images 20000] [--job-worker]
                         [--workers N] [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.loadgen import (  # noqa: E402
    copy_prepared,
    prepare_project,
    run_load,
    true_label_from_name,
    true_tags_from_name,
)
from tests.redis_server import RedisServer  # noqa: E402
from tests.serverproc import ServerProcess  # noqa: E402

GOAL_NEXT_P99_MS = 100.0
GOAL_LABELS_PER_S = 90.0
GOAL_CLIENTS = 8


@contextlib.contextmanager
def job_worker(home: Path, env: dict[str, str]) -> Iterator[None]:
    """One `labeler worker` process for the run's jobs, stopped afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "labeler", "worker"],
        env={**os.environ, "LABELER_HOME": str(home), **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,8",
                        help="Comma-separated annotator counts, run one after another "
                             "(the first is the baseline).")
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds per run.")
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=None,
                        help="Server worker processes (default: labeler serve's).")
    parser.add_argument("--threads", type=int, default=4,
                        help="Request threads per server worker.")
    parser.add_argument("--database-url", default=None,
                        help="LABELER_DATABASE_URL for the server (default: SQLite file).")
    parser.add_argument("--job-worker", action="store_true",
                        help="Run jobs (rounds) in one `labeler worker` process on a private "
                             "redis-server (LABELER_QUEUE_URL) instead of in the web workers.")
    parser.add_argument("--multi-label", action="store_true",
                        help="A multi-label project: annotators send tag sets of 0-2 tags.")
    parser.add_argument("--home", type=Path, default=None,
                        help="Folder for the prepared project and each run's copy "
                             "(default: a temporary one).")
    args = parser.parse_args()
    counts = [int(value) for value in args.clients.split(",")]

    root = args.home or Path(tempfile.mkdtemp(prefix="labeler-load-"))
    home = root / "prepared"
    print(f"preparing {args.images} images in {home} ...", flush=True)
    prepared = prepare_project(home, args.images, max(counts), args.database_url,
                               multi_label=args.multi_label)
    answer = true_tags_from_name if args.multi_label else true_label_from_name
    engine = "PostgreSQL" if args.database_url else "SQLite"
    kind = "multi-label (tag sets)" if args.multi_label else "single-label"
    results = []
    redis = RedisServer(root) if args.job_worker else None
    where = "rounds in a labeler worker process" if redis else "rounds in the web workers"
    for number, clients in enumerate(counts):
        # Every run starts from a fresh copy of the same project: none inherits the labels,
        # rounds or leases of the run before it.
        run_home = root / f"run-{clients}"
        run = copy_prepared(prepared, home, run_home, f"run{clients}")
        env = {"LABELER_DATABASE_URL": run.database_url} if args.database_url else {}
        if redis is not None:
            env["LABELER_QUEUE_URL"] = f"{redis.url}/{number + 1}"
        print(f"\n== {clients} annotator(s), {engine}, {kind}, {where}, {args.duration:.0f} s ==",
              flush=True)
        with ServerProcess(run_home, threads=args.threads, workers=args.workers,
                           fake_backbone=False, env=env) as server, \
                job_worker(run_home, env) if redis else contextlib.nullcontext():
            result = run_load(server.url, run.database_url, run.project_id,
                              run.annotator_tokens[:clients], run.lead_token,
                              answer, args.duration)
        results.append(result)
        print("\n".join(result.lines()))
        if result.client_errors:
            print("client-side errors:", *result.client_errors, sep="\n  ")

    if redis is not None:
        redis.stop()
    baseline, last = results[0], results[-1]
    print("\n== summary ==")
    print(f"{'clients':>8} {'labels/s':>9} {'next p99':>9} {'label p99':>10} "
          f"{'5xx':>4} {'twice':>6} {'lost':>5}")
    for result in results:
        print(f"{result.clients:>8} {result.labels_per_s:>9.1f} {result.next_p99_ms:>7.1f}ms "
              f"{result.label_p99_ms:>8.1f}ms {result.server_errors:>4} "
              f"{result.double_handouts:>6} {result.lost_labels:>5}")
    if len(results) > 1:
        print(f"scaling {last.clients} vs {baseline.clients} client(s): "
              f"{last.labels_per_s / baseline.labels_per_s:.2f}x labels/s")
    print("reference (quoted): Label Studio 1.23.2, 8 annotators on SQLite: ≈ 3 labels/s, "
          "next p99 7–12 s, 4–7 % labelled twice")
    zeros = all(r.server_errors == r.double_handouts == r.lost_labels == 0 for r in results)
    print(f"goal 0 / 0 / 0: {'met' if zeros else 'MISSED'}")
    for goal_run in (r for r in results if r.clients == GOAL_CLIENTS):
        print(f"goal next p99 ≤ {GOAL_NEXT_P99_MS:.0f} ms at {GOAL_CLIENTS} clients: "
              f"{'met' if goal_run.next_p99_ms <= GOAL_NEXT_P99_MS else 'MISSED'} "
              f"({goal_run.next_p99_ms:.1f} ms)")
        print(f"goal ≥ {GOAL_LABELS_PER_S:.0f} labels/s at {GOAL_CLIENTS} clients: "
              f"{'met' if goal_run.labels_per_s >= GOAL_LABELS_PER_S else 'MISSED'} "
              f"({goal_run.labels_per_s:.1f})")
    if not zeros:
        sys.exit(1)


if __name__ == "__main__":
    main()
