"""Labels per minute: single-image mode against grid mode, in a scripted Chromium session.

The demo's 3,000 Fashion-MNIST images, embedded by the real EfficientNet-Lite0 backbone;
``--seed-labels`` of them labelled from the queue with their true class, then one trained
round (and no more during the sessions: both modes face the same model). A real server
(waitress) and Debian's Chromium, one simulated annotator who always knows the truth
(``labeler.demo.demo_truth``):

* single-image mode: reads the image on screen and presses its true class's key;
* grid mode: reads the grid's class, walks the focus ring to each tile whose true class
  differs (arrow keys) and deselects it (Space), then confirms with Enter.

Every session starts from a copy of that prepared data directory, so each mode sees the
same queue and the same predictions. Each labels ``--labels`` images with a fixed pause
after each key press (``--key-delay-ms``, the same for both; 0 measures what the page and
server allow), and the rate counts from the first key press until the server acknowledged
the last label. Also printed: key presses per label, the share of the stored labels that
are correct (read back from the database), and the grids' precision (the share of tiles
the annotator kept).

    python bench/grid_mode.py [--home DIR] [--labels 64] [--key-delay-ms 0 250]
                              [--band-low 0.5 0.7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from labeler import create_app  # noqa: E402
from labeler import grid_mode as grid_settings  # noqa: E402
from labeler.database import upgrade_database  # noqa: E402
from labeler.demo import demo_truth, prepare_demo  # noqa: E402
from labeler.extensions import db  # noqa: E402
from labeler.grid_mode import GRID_BAND, GRID_ORDER  # noqa: E402
from labeler.jobs import run_inline  # noqa: E402
from labeler.models import Annotation, Image, JobStatus, Project, User  # noqa: E402
from labeler.project_vectors import embed_project, embedding_counts  # noqa: E402
from labeler.projects import class_by_name  # noqa: E402
from labeler.queue import lease_next, submit_label  # noqa: E402
from labeler.training import run_round, set_training_options  # noqa: E402
from labeler.users import create_user  # noqa: E402
from tests.e2e.conftest import CHROMIUM, log_in  # noqa: E402

PROJECT, LEAD, PASSWORD = "demo", "demo", "bench-password"
VIEWPORT = {"width": 1280, "height": 800}


@dataclass
class Session:
    mode: str
    key_delay_ms: int
    annotator: str
    band_low: float | None = None  # grid mode: the band's lower edge
    order: str = "confidence"  # grid mode: labeler.grid_mode.GRID_ORDER
    labels: int = 0
    keys: int = 0
    seconds: float = 0.0
    tiles: int = 0  # grid mode: tiles shown (labels + deselected)

    @property
    def per_minute(self) -> float:
        return self.labels / self.seconds * 60 if self.seconds else 0.0


def prepare(home: Path, seed_labels: int) -> tuple[int, dict[int, str], dict[str, str]]:
    """The embedded demo with ``seed_labels`` true labels and one trained round."""
    app = create_app({"HOME": home, "LOGIN_RATE_LIMIT": ""})
    upgrade_database(app)
    with app.app_context():
        print(prepare_demo(PROJECT, LEAD, PASSWORD), flush=True)
        project = db.session.scalar(select(Project).where(Project.name == PROJECT))
        embedded, total = embedding_counts(project)
        if embedded < total:
            print("Embedding with the real backbone (minutes on 2 cores)...", flush=True)
            job = run_inline("embed", project.id, embed_project)
            assert job.status == JobStatus.SUCCEEDED, job.message
        names = demo_truth()
        truth = {image.id: names[image.original_name] for image in db.session.scalars(
            select(Image).where(Image.project_id == project.id))}
        # No round starts while the sessions run: both modes face the same model.
        set_training_options(project, retrain_every=100_000)
        labelled = db.session.scalar(select(db.func.count(Image.id)).where(
            Image.project_id == project.id, Image.label_class_id.is_not(None)))
        if labelled < seed_labels:
            seeder = (db.session.scalar(select(User).where(User.username == "seed"))
                      or create_user("seed", PASSWORD, "annotator"))
            run_inline("retrain", project.id, run_round)  # the cold-start round
            for image in lease_next(project, seeder, n=seed_labels - labelled):
                submit_label(project, image.id, class_by_name(project, truth[image.id]),
                             seeder)
            job = run_inline("retrain", project.id, run_round)
            assert job.status == JobStatus.SUCCEEDED, job.message
            print(job.message, flush=True)
        keys = {c.name: c.key for c in project.active_classes()}
        project_id = project.id
        db.session.remove()
        db.engine.dispose()  # the sessions copy the data directory: no open connection
        return project_id, truth, keys


def single_mode(page, base: str, project_id: int, truth: dict[int, str],
                keys: dict[str, str], session: Session, labels: int) -> None:
    page.goto(f"{base}/projects/{project_id}/label")
    page.wait_for_selector("#current-image:not([hidden])")
    started = time.perf_counter()
    for _ in range(labels):
        image_id = page.get_attribute("#current-image", "data-image-id")
        page.keyboard.press(keys[truth[int(image_id)]], delay=0)
        session.keys += 1
        session.labels += 1
        page.wait_for_function("(id) => document.getElementById('current-image')"
                               ".dataset.imageId !== id", arg=image_id)
        page.wait_for_timeout(session.key_delay_ms)
    page.wait_for_function("document.getElementById('save-state').textContent === "
                           "'all labels saved'")
    session.seconds = time.perf_counter() - started


def grid_mode(page, base: str, project_id: int, truth: dict[int, str],
              session: Session, labels: int) -> None:
    page.goto(f"{base}/projects/{project_id}/grid")
    page.wait_for_selector(".grid-tile")
    started = time.perf_counter()
    while session.labels < labels:
        label = page.text_content("#grid-class")
        ids = [int(i) for i in page.eval_on_selector_all(
            ".grid-tile", "tiles => tiles.map(t => t.dataset.imageId)")]
        if not ids:
            print("  no grid left:", page.text_content("#grid-empty"))
            break
        across = 6 if len(ids) > 16 else 4
        focus = 0
        wrong = [i for i, image_id in enumerate(ids) if truth[image_id] != label]
        for target in wrong:  # down first, then along the row: fewest key presses
            moves = ["ArrowDown"] * (target // across - focus // across)
            step = target % across - focus % across
            moves += ["ArrowRight" if step > 0 else "ArrowLeft"] * abs(step)
            for key in [*moves, "Space"]:
                page.keyboard.press(key)
                session.keys += 1
                page.wait_for_timeout(session.key_delay_ms)
            focus = target
        done = page.text_content("#count-done")
        page.keyboard.press("Enter")
        session.keys += 1
        session.labels += len(ids) - len(wrong)
        session.tiles += len(ids)
        page.wait_for_function("(before) => document.getElementById('count-done')"
                               ".textContent !== before", arg=done)
        page.wait_for_function("document.getElementById('save-state').textContent === ''")
        page.wait_for_timeout(session.key_delay_ms)
    session.seconds = time.perf_counter() - started


def share_correct(home: Path, truth: dict[int, str], username: str) -> tuple[int, float]:
    """The labels ``username`` stored, and the share that match the truth."""
    app = create_app({"HOME": home, "LOGIN_RATE_LIMIT": ""})
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        rows = db.session.scalars(select(Annotation).where(
            Annotation.annotator_id == user.id, Annotation.undone_at.is_(None))).all()
        right = sum(truth[a.image_id] == a.label_class.name for a in rows)
        return len(rows), right / len(rows) if rows else 0.0


def run_session(browser, home: Path, project_id: int, truth: dict[int, str],
                keys: dict[str, str], session: Session, labels: int) -> None:
    """One session on ``home`` (a fresh copy): its own server and browser context."""
    from waitress.server import create_server

    app = create_app({"HOME": home, "LOGIN_RATE_LIMIT": ""})
    with app.app_context():
        create_user(session.annotator, PASSWORD, "annotator")
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{server.effective_port}"
    # The grid's band is read at each lease, and the server runs in this process.
    grid_settings.GRID_BAND = (session.band_low or GRID_BAND[0], GRID_BAND[1])
    grid_settings.GRID_ORDER = session.order
    try:
        # bypass_csp: wait_for_function evaluates strings, which the pages' CSP forbids.
        context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
        page = context.new_page()
        log_in(page, base, session.annotator, PASSWORD)
        if session.mode == "single":
            single_mode(page, base, project_id, truth, keys, session, labels)
        else:
            grid_mode(page, base, project_id, truth, session, labels)
        # The last grid's thumbnails load before the server stops serving them.
        page.wait_for_function("Array.from(document.images).every((img) => img.complete)")
        context.close()
    finally:
        server.close()


def run(home: Path, scratch: Path, labels: int, delays: list[int], seed_labels: int,
        band_lows: list[float], orders: list[str]) -> None:
    from playwright.sync_api import sync_playwright

    project_id, truth, keys = prepare(home, seed_labels)
    grids = [("grid", low, order) for low in band_lows for order in orders]
    sessions = [Session(mode, delay, f"{mode}-{delay}", low, order) for delay in delays
                for mode, low, order in [("single", None, ""), *grids]]
    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        for number, session in enumerate(sessions):
            # Every session starts from the same state: a copy of the prepared home.
            copy = scratch / f"session-{number}"
            shutil.copytree(home, copy)
            run_session(browser, copy, project_id, truth, keys, session, labels)
            results.append((session, *share_correct(copy, truth, session.annotator)))
            shutil.rmtree(copy)
        browser.close()
    print(f"\n{'mode':<24}{'key delay':>10}{'labels':>8}{'seconds':>9}{'labels/min':>12}"
          f"{'keys/label':>12}{'correct':>9}{'grid precision':>16}")
    for s, stored, correct in results:
        assert stored == s.labels, (stored, s.labels)
        precision = f"{s.labels / s.tiles:.1%}" if s.tiles else "-"
        mode = f"{s.mode} {s.band_low} {s.order}" if s.band_low is not None else s.mode
        print(f"{mode:<24}{s.key_delay_ms:>8}ms{s.labels:>8}{s.seconds:>9.1f}"
              f"{s.per_minute:>12.1f}{s.keys / s.labels:>12.2f}{correct:>9.1%}{precision:>16}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="data directory to use and keep "
                        "(default: a temporary one, removed afterwards)")
    parser.add_argument("--labels", type=int, default=64, help="labels per session")
    parser.add_argument("--key-delay-ms", type=int, nargs="+", default=[0, 250],
                        help="pause after each key press, one pair of sessions per value")
    parser.add_argument("--seed-labels", type=int, default=100,
                        help="true labels before the one trained round")
    parser.add_argument("--band-low", type=float, nargs="+", default=[GRID_BAND[0]],
                        help="grid mode: lower edges of the confidence band to compare")
    parser.add_argument("--order", nargs="+", default=[GRID_ORDER],
                        choices=["confidence", "queue"], help="grid mode: order in the band")
    args = parser.parse_args()
    if CHROMIUM is None:
        raise SystemExit("Chromium is not installed (apt: chromium).")
    with tempfile.TemporaryDirectory(prefix="labeler-grid-bench-") as scratch:
        run(args.home or Path(scratch) / "home", Path(scratch), args.labels,
            args.key_delay_ms, args.seed_labels, args.band_low, args.order)


if __name__ == "__main__":
    main()
