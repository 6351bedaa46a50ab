"""Embedding throughput: the whole pipeline against the bare backbone, in one run.

- bare backbone: ``Backbone.embed`` on pre-decoded 224×224 tensors already in memory;
- pipeline: the real embed job — JPEG files on disk, decoded and resized in the parallel
  tf.data pipeline, embedded, and appended to the project's vector store.

Goal on 2 cores: pipeline ≥ 0.9 × bare backbone. Also prints peak RSS.

    python bench/embed_throughput.py [--count 320] [--batch-size 32] [--size 640x480]

``--size 4032x3024`` measures 12-megapixel phone photos, where decoding weighs most.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_throughput import make_jpegs  # noqa: E402

GOAL_RATIO = 0.9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=320)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", default="640x480", help="JPEG width x height in pixels")
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.lower().split("x"))

    from labeler import create_app
    from labeler.database import upgrade_database
    from labeler.embeddings import prepare_image
    from labeler.importer import import_paths
    from labeler.jobs import run_inline
    from labeler.project_vectors import embed_project, get_backbone
    from labeler.projects import create_project

    with tempfile.TemporaryDirectory() as tmp:
        folder, home = Path(tmp) / "jpegs", Path(tmp) / "home"
        folder.mkdir()
        make_jpegs(folder, args.count, width, height)
        app = create_app({"HOME": home, "LOG_LEVEL": "WARNING"})
        upgrade_database(app)
        with app.app_context():
            project = create_project("bench")
            import_paths(project, [folder])
            started = time.perf_counter()
            backbone = get_backbone("efficientnet-lite0")
            print(f"backbone loaded in {time.perf_counter() - started:.1f} s (TF import incl.)")

            from PIL import Image

            paths = sorted(folder.glob("*.jpg"))
            tensors = np.stack([prepare_image(Image.open(p), 224) for p in paths])
            backbone.embed(tensors[: args.batch_size * 2], batch_size=args.batch_size)  # warm-up

            started = time.perf_counter()
            backbone.embed(tensors, batch_size=args.batch_size)
            bare = len(tensors) / (time.perf_counter() - started)

            # Warm the pipeline's graph too, on a throwaway list, so both timings are hot.
            for _ in backbone.embed_files([str(p) for p in paths[: args.batch_size]],
                                          batch_size=args.batch_size):
                pass
            started = time.perf_counter()
            job = run_inline("embed", project.id, embed_project, batch_size=args.batch_size)
            pipeline = args.count / (time.perf_counter() - started)
            assert job.status == "succeeded", job.message

    ratio = pipeline / bare
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"bare backbone (pre-decoded tensors): {bare:6.1f} images/s")
    print(f"pipeline ({width}x{height} JPEG files -> stored): {pipeline:6.1f} images/s  "
          f"({ratio:.2f}x bare)")
    print(f"peak RSS: {peak:.0f} MiB")
    print(f"goal pipeline >= {GOAL_RATIO} x bare: {'met' if ratio >= GOAL_RATIO else 'MISSED'}")


if __name__ == "__main__":
    main()
