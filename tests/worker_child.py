"""``python -m tests.worker_child worker ...``: ``labeler worker`` with test hooks.

Registers the fake backbone and the slow-downs of ``tests.serve_child`` (e.g.
``LABELER_TEST_EMBED_DELAY_S``, a sleep per embedded batch, so a test can kill a worker
mid-chunk), and lets a test shorten the worker's timings, which default to minutes:

- ``LABELER_TEST_CHUNK_SIZE``: images per embedding chunk.
- ``LABELER_TEST_HEARTBEAT_S``: seconds between heartbeats of a running job.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import insert, select

from labeler.cli import main
from labeler.extensions import db
from labeler.jobs.rq import chunks, worker
from labeler.models import Image
from labeler.storage import BlobStore
from tests.dbutil import database_env
from tests.serve_child import install_test_hooks

REPO_ROOT = Path(__file__).resolve().parents[1]


def start_worker(home: Path, queue_url: str, *args: str,
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``labeler worker ARGS`` in a child process on ``home``, logging to ``home``."""
    environ = {**os.environ, "LABELER_HOME": str(home), "LABELER_QUEUE_URL": queue_url,
               "LABELER_LOG_LEVEL": "WARNING", **database_env(home), **(env or {})}
    log = (home / f"worker-{len(list(home.glob('worker-*.log')))}.log").open("wb")
    with log:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "tests.worker_child", "worker", *args],
                                cwd=REPO_ROOT, env=environ, stdout=log,
                                stderr=subprocess.STDOUT)


def add_tiny_images(project_id: int, home: Path, count: int, seed: int = 0) -> list[int]:
    """Store ``count`` distinct 16×16 PNGs as the project's images (no import); their ids.

    Thousands of images for queue tests, without the importer's per-file cost.
    """
    blobs = BlobStore(home)
    rng = np.random.default_rng(seed)
    rows = []
    for number in range(count):
        buffer = io.BytesIO()
        pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
        PILImage.fromarray(pixels).save(buffer, "PNG")
        data = buffer.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        path = blobs.image_path(sha, "PNG")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        rows.append({"project_id": project_id, "sha256": sha, "format": "PNG",
                     "original_name": f"tiny-{number}.png", "width": 16, "height": 16,
                     "size_bytes": len(data)})
    db.session.execute(insert(Image), rows)
    db.session.commit()
    return list(db.session.scalars(select(Image.id).where(Image.project_id == project_id)))

if __name__ == "__main__":
    install_test_hooks(dict(os.environ))
    if size := int(os.environ.get("LABELER_TEST_CHUNK_SIZE", "0")):
        chunks.CHUNK_SIZE = size
    if beat := float(os.environ.get("LABELER_TEST_HEARTBEAT_S", "0")):
        worker.HEARTBEAT_INTERVAL_S = beat
    main()
