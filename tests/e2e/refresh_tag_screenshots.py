"""Refresh the README's multi-label screenshots (docs/screenshots/*-tags.png).

    .venv/bin/python -m tests.e2e.refresh_tag_screenshots [--home DIR] [--out DIR]

A tagging project as a user sees it after a while: 400 real 2×2 mosaics of the demo's
Fashion-MNIST items, tagged with the kinds of item they hold (tests/e2e/fashion.py),
embedded by the real EfficientNet-Lite0 backbone, 80 of them tagged from the queue with
their true tags (20 per round), so the suggestions, filters and metrics are the real
model's. The browser tests never write these files; run this on purpose, look at the
pictures, and commit them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
from pathlib import Path

from sqlalchemy import select

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from labeler import create_app  # noqa: E402
from labeler.database import upgrade_database  # noqa: E402
from labeler.extensions import db  # noqa: E402
from labeler.importer import import_sources  # noqa: E402
from labeler.jobs import run_inline  # noqa: E402
from labeler.models import JobStatus, Project  # noqa: E402
from labeler.project_vectors import embed_project  # noqa: E402
from labeler.projects import create_project  # noqa: E402
from labeler.queue import lease_next, submit_tags  # noqa: E402
from labeler.sources import Source  # noqa: E402
from labeler.training import run_round  # noqa: E402
from labeler.users import create_user  # noqa: E402
from tests.e2e.conftest import CHROMIUM, log_in  # noqa: E402
from tests.e2e.fashion import MOSAIC_TAGS, tag_mosaics  # noqa: E402
from tests.e2e.refresh_screenshots import README_SCREENSHOTS, VIEWPORT  # noqa: E402

PROJECT, LEAD, PASSWORD = "mosaics", "lead", "screenshot-password"
IMAGES, LABELS, PER_ROUND = 400, 80, 20


def prepare(home: Path) -> int:
    """The mosaic project, embedded, with LABELS true tag sets and a round per PER_ROUND."""
    app = create_app({"HOME": home, "LOGIN_RATE_LIMIT": ""})
    upgrade_database(app)
    with app.app_context():
        project = db.session.scalar(select(Project).where(Project.name == PROJECT))
        if project is not None:
            return project.id
        lead = create_user(LEAD, PASSWORD, "lead")
        project = create_project(PROJECT, list(MOSAIC_TAGS), multi_label=True)
        mosaics = tag_mosaics(IMAGES, seed=7)
        truth = {name: tags for name, _, tags in mosaics}
        import_sources(project, [Source(name, lambda data=data: data, None, len(data))
                                 for name, data, _ in mosaics], total=IMAGES)
        print("Embedding with the real backbone...", flush=True)
        job = run_inline("embed", project.id, embed_project)
        assert job.status == JobStatus.SUCCEEDED, job.message
        print(job.message, flush=True)
        classes = {c.name: c for c in project.classes}
        run_inline("retrain", project.id, run_round)  # the server's cold-start round
        for labelled in range(PER_ROUND, LABELS + 1, PER_ROUND):
            for image in lease_next(project, lead, n=PER_ROUND):
                submit_tags(project, image.id,
                            [classes[t] for t in truth[image.original_name]], lead)
            job = run_inline("retrain", project.id, run_round)
            print(f"{labelled} labels: {job.message}", flush=True)
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
            page = browser.new_context(viewport=VIEWPORT, bypass_csp=True).new_page()
            log_in(page, base, LEAD, PASSWORD)
            page.goto(f"{p}/label")
            page.wait_for_selector(".tag-button .tag-prob:not(:empty)")
            page.wait_for_function("document.getElementById('progress-accuracy')"
                                   ".textContent.startsWith('round')")
            # One correction by hand beside the model's suggestions: the key of the first
            # tag not suggested.
            off = page.locator(".tag-button[aria-pressed=false] kbd")
            if off.count():
                page.keyboard.press(off.first.text_content())
            page.wait_for_function("Array.from(document.images).every((i) => i.complete)")
            page.mouse.move(5, 5)
            page.screenshot(path=str(out / "labelling-tags.png"))

            page.goto(f"{p}/gallery?label=unlabelled&tag=trouser&tag_state=predicted"
                      "&sort=confidence")
            page.wait_for_function("Array.from(document.querySelectorAll('.g-thumb img'))"
                                   ".slice(0, 18).every((img) => img.complete)")
            tiles = page.locator(".g-tile")
            for i in (0, 1, 3):
                tiles.nth(i).click()
            page.select_option("#g-tag-select", "trouser")
            page.mouse.move(5, 5)
            page.evaluate("document.activeElement.blur()")
            page.wait_for_timeout(300)  # the selection ring's transition
            page.screenshot(path=str(out / "gallery-tags.png"))

            page.goto(f"{p}/dashboard")
            page.wait_for_selector("#dashboard[data-loaded=true]")
            page.screenshot(path=str(out / "dashboard-tags.png"), full_page=True)
            browser.close()
    finally:
        server.close()
    for name in ("labelling-tags", "gallery-tags", "dashboard-tags"):
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
