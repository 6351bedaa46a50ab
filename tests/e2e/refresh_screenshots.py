"""Refresh the README's screenshots (docs/screenshots/*.png) from the real demo.

    .venv/bin/python -m tests.e2e.refresh_screenshots [--home DIR] [--out DIR]

What a first-time user sees after a while with ``labeler demo``: the demo's 3,000 real
Fashion-MNIST images, embedded by the real EfficientNet-Lite0 backbone, 200 of them
labelled from the queue with their true class (as an annotator would, 20 per round), so
the predictions, metrics and map are the real model's. The browser tests never write
these files (they save theirs in the ignored test-artifacts/); run this on purpose, look
at the pictures, and commit them.

Embedding takes a few minutes on 2 cores; ``--home DIR`` keeps the data directory (and
the backbone converted once) so that a second run starts from there.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from labeler import create_app  # noqa: E402
from labeler.database import upgrade_database  # noqa: E402
from labeler.demo import load_demo_images, prepare_demo  # noqa: E402
from labeler.embedding_map import compute_tsne_layout  # noqa: E402
from labeler.extensions import db  # noqa: E402
from labeler.jobs import JobKind, run_inline  # noqa: E402
from labeler.models import Image, JobStatus, Project, User  # noqa: E402
from labeler.project_vectors import embed_project, embedding_counts  # noqa: E402
from labeler.projects import class_by_name  # noqa: E402
from labeler.queue import lease_next, submit_label  # noqa: E402
from labeler.storage import blob_store  # noqa: E402
from labeler.training import run_round  # noqa: E402
from labeler.users import create_user  # noqa: E402
from tests.e2e.conftest import (  # noqa: E402
    CHROMIUM,
    REPO_ROOT,
    log_in,  # noqa: E402
)

README_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
PROJECT, LEAD, ANNOTATOR, PASSWORD = "demo", "demo", "kim", "screenshot-password"
LABELS, PER_ROUND = 200, 20
VIEWPORT = {"width": 1280, "height": 800}
# The drawn point nearest a spot given as fractions of the canvas, in CSS pixels.
POINT_NEAR = """([fx, fy]) => {
  const canvas = document.getElementById('map-canvas');
  const {data, width, height} = canvas.getContext('2d').getImageData(0, 0, canvas.width,
                                                                      canvas.height);
  const dpr = canvas.width / canvas.getBoundingClientRect().width;
  let best = null, bestD = Infinity;
  for (let y = 0; y < height; y += 2) for (let x = 0; x < width; x += 2) {
    if (data[(y * width + x) * 4 + 3] < 200) continue;
    const d = (x - fx * width) ** 2 + (y - fy * height) ** 2;
    if (d < bestD) { bestD = d; best = {x: x / dpr, y: y / dpr}; }
  }
  return best;
}"""


def true_classes(project: Project) -> dict[int, str]:
    """Image id -> true Fashion-MNIST class, matched by pixels (whatever the file names)."""
    images, labels, names = load_demo_images()
    truth = {pixels.tobytes(): names[label] for pixels, label in zip(images, labels, strict=True)}
    store = blob_store()
    found = {}
    for image in db.session.scalars(select(Image).where(Image.project_id == project.id)):
        data = store.image_path(image.sha256, image.format).read_bytes()
        pixels = np.asarray(PILImage.open(io.BytesIO(data)).convert("L"))
        found[image.id] = truth[pixels.tobytes()]
    return found


def prepare(home: Path) -> int:
    """The demo project, embedded, with LABELS true labels and a round per PER_ROUND."""
    app = create_app({"HOME": home, "LOGIN_RATE_LIMIT": ""})
    upgrade_database(app)
    with app.app_context():
        print(prepare_demo(PROJECT, LEAD, PASSWORD))
        project = db.session.scalar(select(Project).where(Project.name == PROJECT))
        embedded, total = embedding_counts(project)
        if embedded < total:  # a second run with --home starts from the stored vectors
            print("Embedding with the real backbone (minutes on 2 cores)...", flush=True)
            job = run_inline("embed", project.id, embed_project)
            assert job.status == JobStatus.SUCCEEDED, job.message
            print(job.message, flush=True)
        annotator = (db.session.scalar(select(User).where(User.username == ANNOTATOR))
                     or create_user(ANNOTATOR, PASSWORD, "annotator"))
        labelled = sum(1 for _ in db.session.scalars(select(Image.id).where(
            Image.project_id == project.id, Image.label_class_id.is_not(None))))
        if labelled < LABELS:
            truth = true_classes(project)
            run_inline("retrain", project.id, run_round)  # the server's cold-start round
            while labelled < LABELS:
                for image in lease_next(project, annotator, n=PER_ROUND):
                    submit_label(project, image.id, class_by_name(project, truth[image.id]),
                                 annotator)
                    labelled += 1
                job = run_inline("retrain", project.id, run_round)
                print(f"{labelled} labels: {job.message}", flush=True)
        # The map's t-SNE layout, as the server computes it after an embedding.
        job = run_inline(JobKind.MAP, project.id, compute_tsne_layout)
        assert job.status == JobStatus.SUCCEEDED, job.message
        print(job.message, flush=True)
        return project.id


def shoot(home: Path, project_id: int, out: Path) -> None:
    from playwright.sync_api import sync_playwright
    from waitress.server import create_server

    app = create_app({"HOME": home, "LOGIN_RATE_LIMIT": ""})
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{server.effective_port}"
    out.mkdir(parents=True, exist_ok=True)
    p = f"{base}/projects/{project_id}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu"])
            annotator = browser.new_context(viewport=VIEWPORT, bypass_csp=True).new_page()
            log_in(annotator, base, ANNOTATOR, PASSWORD)
            annotator.goto(f"{p}/label")
            annotator.wait_for_selector("#neighbours:not([hidden]) img")
            annotator.wait_for_function("document.getElementById('progress-accuracy')"
                                        ".textContent.startsWith('round')")
            annotator.wait_for_function("Array.from(document.images).every((i) => i.complete)")
            annotator.screenshot(path=str(out / "labelling.png"))

            lead = browser.new_context(viewport=VIEWPORT, bypass_csp=True).new_page()
            log_in(lead, base, LEAD, PASSWORD)
            lead.goto(f"{p}/gallery")
            lead.wait_for_function("Array.from(document.querySelectorAll('.g-thumb img'))"
                                   ".slice(0, 18).every((img) => img.complete)")
            tiles = lead.locator(".g-tile")
            for i in (1, 2, 4):  # a selection, as when confirming several at once
                tiles.nth(i).click()
            lead.mouse.move(5, 5)
            lead.evaluate("document.activeElement.blur()")  # no focus-only "Details" button
            lead.wait_for_timeout(300)  # the selection ring's transition
            lead.screenshot(path=str(out / "gallery.png"))

            lead.goto(f"{p}/dashboard")
            lead.wait_for_selector("#dashboard[data-loaded=true]")
            lead.screenshot(path=str(out / "dashboard.png"), full_page=True)

            lead.goto(f"{p}/map")
            lead.wait_for_selector("#map-canvas[data-drawn][data-method='tsne']", timeout=120_000)
            # Coloured by label: where the 200 labels fell among the t-SNE clusters.
            lead.screenshot(path=str(out / "map-labels.png"))
            # Coloured by prediction: 200 labels among 3,000 would be a grey cloud.
            lead.click("label:has(input[value=predicted])")
            lead.wait_for_selector("#map-canvas[data-colour-by='predicted']")
            point = lead.evaluate(POINT_NEAR, [0.33, 0.6])
            box = lead.locator("#map-canvas").bounding_box()
            lead.mouse.move(box["x"] + point["x"], box["y"] + point["y"])
            lead.wait_for_selector("#map-tooltip:not([hidden])")
            lead.wait_for_function("document.getElementById('tooltip-img').complete")
            lead.screenshot(path=str(out / "map.png"))
            browser.close()
    finally:
        server.close()
    for name in ("labelling", "gallery", "dashboard", "map-labels", "map"):
        print(f"wrote {out / (name + '.png')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="data directory to use and keep "
                        "(default: a temporary one, removed afterwards)")
    parser.add_argument("--out", type=Path, default=README_SCREENSHOTS,
                        help=f"where the PNG files go (default: {README_SCREENSHOTS})")
    args = parser.parse_args()
    if CHROMIUM is None:
        raise SystemExit("Chromium is not installed; `bash .ci/run` installs it (apt: chromium).")
    with tempfile.TemporaryDirectory(prefix="labeler-screenshots-") as scratch:
        home = args.home or Path(scratch)
        project_id = prepare(home)
        shoot(home, project_id, args.out)


if __name__ == "__main__":
    main()
