"""Wall time of one retrain round on the demo (3,000 images), per head, in one run.

Prepares the demo project in ``--home`` (once: import and embed with the real Lite0
backbone, a few minutes on 2 cores), labels ``--labels`` images with their true class,
then runs rounds alternately with the logistic head (the baseline: what rounds fitted
before issue 16) and the pseudo-label head (the default now), ``--repeats`` times each.
The first pseudo-label round runs without the cached neighbour graph (its file removed),
so its time includes building the graph, which later rounds reuse. Prints each round's
duration (``ModelRound.duration_s``) and the cross-validated accuracy, temperature and ECE.

    python bench/round_time.py [--home bench/out/round-time-home] [--labels 200]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def prepare(home: Path) -> None:
    """Create and embed the demo project (both steps do nothing when already done)."""
    labeler = [sys.executable, "-m", "labeler"]
    subprocess.run([*labeler, "demo", "--home", str(home), "--no-serve"], check=True)
    subprocess.run([*labeler, "embed", "demo"], check=True,
                   env={**os.environ, "LABELER_HOME": str(home)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("bench/out/round-time-home"))
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    prepare(args.home)

    from sqlalchemy import select
    from threadpoolctl import threadpool_limits

    from labeler import create_app
    from labeler.demo import demo_truth
    from labeler.extensions import db
    from labeler.jobs import run_inline
    from labeler.models import Image, ModelRound, User
    from labeler.project_vectors import current_vectors
    from labeler.projects import get_project
    from labeler.queue import label_images
    from labeler.training import run_round, set_training_options

    # As `labeler serve` runs rounds: one BLAS thread per worker (labeler/server.py).
    threadpool_limits(limits=1, user_api="blas")
    app = create_app({"HOME": str(args.home)})
    with app.app_context():
        project = get_project("demo")
        user = db.session.scalar(select(User).where(User.username == "demo"))
        truth = demo_truth()
        classes = {c.name: c for c in project.classes}
        images = db.session.scalars(select(Image).where(Image.project_id == project.id)
                                    .order_by(Image.id)).all()
        labelled = [i for i in images if i.label_class_id is not None]
        missing = args.labels - len(labelled)
        if missing > 0:
            rng = np.random.default_rng(0)
            free = [i for i in images if i.label_class_id is None]
            chosen = [free[k] for k in rng.choice(len(free), missing, replace=False)]
            label_images(project, [(i, classes[truth[i.original_name]]) for i in chosen],
                         user, respect_leases=False)
        store = current_vectors(project)
        graph_file = store.vectors_path.parent / f"{store.vectors_path.stem}.graph.npz"
        print(f"demo: {len(images)} images, {max(args.labels, len(labelled))} labels")
        print("head          graph   round s   cv acc   T      ECE raw -> calibrated")
        for repeat in range(args.repeats):
            for head in ("logistic", "pseudo_label"):
                cold = head == "pseudo_label" and repeat == 0
                if cold:
                    graph_file.unlink(missing_ok=True)
                set_training_options(project, head=head)
                run_inline("retrain", project.id, run_round)
                round_ = db.session.scalar(
                    select(ModelRound).where(ModelRound.project_id == project.id)
                    .order_by(ModelRound.number.desc()).limit(1))
                metrics = round_.metrics
                calibration = metrics.get("calibration") or {}
                graph = "built" if cold else ("cached" if head != "logistic" else "-")
                print(f"{head:13} {graph:7} {round_.duration_s:7.2f}   "
                      f"{metrics.get('accuracy', float('nan')):.3f}    "
                      f"{calibration.get('temperature', float('nan')):.2f}   "
                      f"{calibration.get('ece_raw', float('nan')):.3f} -> "
                      f"{calibration.get('ece', float('nan')):.3f}", flush=True)


if __name__ == "__main__":
    main()
