"""Does the exported ``.keras`` model predict what the app shows? On all 3,000 demo images.

Builds the demo project exactly as ``labeler demo`` does (3,000 Fashion-MNIST images,
28×28 PNGs), embeds them with the real backbone, runs the cold-start round, labels the
first ``--labels`` images the queue serves with their true class (as a diligent annotator
would), runs a round, and exports the model. Then the README's own snippet, in a fresh
Python that never imports labeler, predicts every stored image, and its class and
confidence are compared with the app's stored predictions (what
``labeler export --format csv --include-predictions`` writes).

    python bench/export_parity.py [--labels 200]

The goal is the same class on every image and confidence within 0.001.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.exported_model import predict_with_readme_snippet  # noqa: E402

CONFIDENCE_TOLERANCE = 1e-3


def _truth_by_pixels() -> dict[bytes, str]:
    """True class name of each demo image, keyed by its pixels (robust to file naming)."""
    from labeler.demo import load_demo_images

    images, labels, names = load_demo_images()
    return {pixels.tobytes(): names[label] for pixels, label in zip(images, labels, strict=True)}


def _build_and_export(home: Path, n_labels: int) -> tuple[Path, list[Path], list, str]:
    """The demo project, labelled and trained; returns (model, files, app rows, round)."""
    from PIL import Image

    from labeler import create_app
    from labeler.database import upgrade_database
    from labeler.demo import prepare_demo
    from labeler.export import iter_rows
    from labeler.jobs import run_inline
    from labeler.model_export import export_model
    from labeler.models import JobStatus, Project, User
    from labeler.project_vectors import embed_project
    from labeler.projects import class_by_name
    from labeler.queue import lease_next, submit_label
    from labeler.storage import blob_store
    from labeler.training import run_round

    app = create_app({"HOME": home, "LOG_LEVEL": "WARNING"})
    upgrade_database(app)
    with app.app_context():
        from labeler.extensions import db

        print(prepare_demo("demo", "demo-lead", "demo-password-123"))
        project = db.session.query(Project).filter_by(name="demo").one()
        lead = db.session.query(User).filter_by(username="demo-lead").one()
        started = time.perf_counter()
        job = run_inline("embed", project.id, embed_project)
        assert job.status == JobStatus.SUCCEEDED, job.message
        print(f"{job.message} ({time.perf_counter() - started:.0f} s)")
        job = run_inline("retrain", project.id, run_round)  # cold start: ranks the pool
        print(f"Job #{job.id}: {job.message}")

        truth = _truth_by_pixels()
        store = blob_store()
        for image in lease_next(project, lead, n=n_labels):
            pixels = np.asarray(Image.open(store.image_path(image.sha256, image.format))
                                .convert("L")).tobytes()
            submit_label(project, image.id, class_by_name(project, truth[pixels]), lead)
        job = run_inline("retrain", project.id, run_round)
        assert job.status == JobStatus.SUCCEEDED, job.message
        print(f"Job #{job.id}: {job.message}")

        model_path = home / "demo.keras"
        exported = export_model(project, model_path)
        rows = list(iter_rows(project, include_unlabelled=True))
        files = [store.image_path(row.sha256, row.format) for row in rows]
        return model_path, files, rows, str(exported)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=200,
                        help="images to label (from the queue, with their true class)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        model_path, files, rows, exported = _build_and_export(home, args.labels)
        print(exported)
        started = time.perf_counter()
        snippet = predict_with_readme_snippet(model_path, files, Path(tmp) / "snippet")
        print(f"README snippet, fresh Python: {len(files)} images in "
              f"{time.perf_counter() - started:.0f} s")

    app_labels = [row.predicted for row in rows]
    app_confidence = np.array([row.confidence for row in rows], dtype=np.float64)
    file_labels = snippet.labels
    file_confidence = np.array([snippet.confidence_of(i, label)
                                for i, label in enumerate(app_labels)])
    agree = sum(a == f for a, f in zip(app_labels, file_labels, strict=True))
    difference = np.abs(file_confidence - app_confidence)
    worst = int(difference.argmax())
    print(f"same class: {agree} of {len(rows)} images ({agree / len(rows):.2%})")
    print(f"confidence difference (app's class): max {difference.max():.2e}, "
          f"mean {difference.mean():.2e}; worst: {rows[worst].file_name} "
          f"{app_labels[worst]} {app_confidence[worst]:.4f} in the app, "
          f"{file_confidence[worst]:.4f} from the file")
    met = agree == len(rows) and difference.max() <= CONFIDENCE_TOLERANCE
    print(f"goal (every class the same, confidence within {CONFIDENCE_TOLERANCE}): "
          f"{'met' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
