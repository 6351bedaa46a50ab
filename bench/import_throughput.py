"""Import throughput: 2,000 generated 640×480 JPEGs into a fresh project.

Prints images/s and peak memory for the default (IMPORT_WORKERS threads) and, as the
baseline in the same run, for a single decoding thread. Goal on 2 cores: ≥ 200 images/s.

    python bench/import_throughput.py [--count 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import io
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

GOAL_IMAGES_PER_S = 200


def make_jpegs(folder: Path, count: int, width: int = 640, height: int = 480) -> int:
    """Write ``count`` distinct photo-like JPEGs (smooth shapes plus sensor-like noise)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    total = 0
    for index in range(count):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(50, 300)
        base = rng.uniform(0, 255, size=3)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None]
        pixels = base * (1 - blob) + (255 - base) * blob
        pixels += rng.normal(0, 6, size=(height, width, 3))
        buffer = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG",
                                                                        quality=88)
        (folder / f"img_{index:05d}.jpg").write_bytes(buffer.getvalue())
        total += len(buffer.getvalue())
    return total


def run_import(folder: Path, workers: int) -> tuple[int, float]:
    from labeler import create_app
    from labeler.database import upgrade_database
    from labeler.importer import import_paths
    from labeler.projects import create_project

    with tempfile.TemporaryDirectory() as home:
        app = create_app({"HOME": Path(home), "IMPORT_WORKERS": workers, "LOG_LEVEL": "WARNING"})
        upgrade_database(app)
        with app.app_context():
            project = create_project("bench")
            start = time.perf_counter()
            report = import_paths(project, [folder])
            elapsed = time.perf_counter() - start
    assert not report.rejected, report.rejected[:3]
    return report.imported, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        size = make_jpegs(folder, args.count)
        print(f"generated {args.count} JPEGs 640x480, {size / 2**20:.1f} MiB, "
              f"in {time.perf_counter() - started:.1f} s")
        baseline_n, baseline_s = run_import(folder, workers=1)
        n, elapsed = run_import(folder, workers=args.workers)
    rate, baseline_rate = n / elapsed, baseline_n / baseline_s
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"baseline (1 decoding thread): {baseline_rate:7.1f} images/s")
    print(f"labeler ({args.workers} decoding threads): {rate:7.1f} images/s "
          f"({rate / baseline_rate:.2f}x baseline)")
    print(f"peak RSS of this process: {peak_mib:.0f} MiB")
    verdict = "met" if rate >= GOAL_IMAGES_PER_S else "MISSED"
    print(f"goal >= {GOAL_IMAGES_PER_S} images/s: {verdict}")


if __name__ == "__main__":
    main()
