"""Concurrent annotators against a running server: the engine of ``bench/load.py``.

Each simulated annotator has its own account and API token and loops: ``GET next`` →
``POST annotations`` with the image's true class, as fast as the server answers. A lead
client triggers a retrain half-way. Afterwards the database is read directly to check the
three things a labelling tool must never do: answer 5xx, hand one image to two annotators
at once, or lose a label it acknowledged.
"""

from __future__ import annotations

import http.client
import json
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import requests
from sqlalchemy import create_engine, text


@dataclass
class ClientLog:
    """What one simulated annotator saw."""

    next_latencies: list[float] = field(default_factory=list)
    label_latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    served: list[tuple[int, float]] = field(default_factory=list)  # (image id, when)
    acknowledged: dict[int, tuple[int, str]] = field(default_factory=dict)  # ann → (img, label)
    errors: list[str] = field(default_factory=list)


@dataclass
class LoadResult:
    """The figures of one run; ``problems`` lists anything that must be zero but is not."""

    clients: int
    duration_s: float
    requests: int
    labels: int
    next_p50_ms: float
    next_p99_ms: float
    label_p50_ms: float
    label_p99_ms: float
    server_errors: int
    conflicts: int
    double_handouts: int
    lost_labels: int
    retrain_status: str
    client_errors: list[str]
    client_cpu_share: float = 0.0  # cores the load generator itself used (same machine)

    @property
    def labels_per_s(self) -> float:
        return self.labels / self.duration_s

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s

    def lines(self) -> list[str]:
        """The report, one figure per line."""
        return [
            f"clients {self.clients}, {self.duration_s:.1f} s",
            f"requests/s            {self.requests_per_s:8.1f}",
            f"labels/s              {self.labels_per_s:8.1f}   ({self.labels} labels)",
            f"next   p50 / p99      {self.next_p50_ms:6.1f} / {self.next_p99_ms:6.1f} ms",
            f"label  p50 / p99      {self.label_p50_ms:6.1f} / {self.label_p99_ms:6.1f} ms",
            f"5xx answers           {self.server_errors:8d}",
            f"handed to two at once {self.double_handouts:8d}",
            f"acknowledged but lost {self.lost_labels:8d}",
            f"409 conflicts         {self.conflicts:8d}",
            f"retrain half-way      {self.retrain_status}",
            f"load generator used   {self.client_cpu_share:8.2f} cores",
        ]


def _percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else float("nan")


#: What an annotator answers for an image: a class name, or (multi-label) a list of tags.
Answer = str | list[str]


def _annotate(base_url: str, project_id: int, token: str,
              true_label: Callable[[dict], Answer], stop: threading.Event,
              log: ClientLog) -> None:
    # http.client, one keep-alive connection per annotator: the load generator shares the
    # machine with the server, and requests costs several times more CPU per call.
    address = urlsplit(base_url)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    next_path = f"/api/v1/projects/{project_id}/next"
    label_path = f"/api/v1/projects/{project_id}/annotations"
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        connection.request(method, path, body=json.dumps(body) if body else None,
                           headers=headers)
        response = connection.getresponse()
        payload = response.read()
        return response.status, (json.loads(payload) if payload else {})

    while not stop.is_set():
        try:
            started = time.perf_counter()
            status, data = call("GET", next_path)
            log.next_latencies.append(time.perf_counter() - started)
            log.statuses[status] += 1
            if status != 200:
                continue
            if not data["items"]:
                return  # the queue is empty: everything is labelled
            item = data["items"][0]
            log.served.append((item["image_id"], time.monotonic()))
            label = true_label(item)
            key = "labels" if isinstance(label, list) else "label"
            started = time.perf_counter()
            status, data = call("POST", label_path, {"image_id": item["image_id"],
                                                     key: label})
            log.label_latencies.append(time.perf_counter() - started)
            log.statuses[status] += 1
            if status == 201:
                log.acknowledged[data["annotation_id"]] = (item["image_id"], label)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # A dropped connection or a garbled answer counts as a failure; reconnect.
            log.errors.append(f"{type(exc).__name__}: {exc}")
            connection.close()
    connection.close()


def _double_handouts(logs: list[ClientLog]) -> int:
    """Images served to two different annotators (leases last 10 min, runs far less)."""
    holders: dict[int, set[int]] = defaultdict(set)
    for client, log in enumerate(logs):
        for image_id, _ in log.served:
            holders[image_id].add(client)
    return sum(1 for clients in holders.values() if len(clients) > 1)


def _lost_labels(database_url: str, logs: list[ClientLog]) -> int:
    """Acknowledged annotations missing, undone, or no longer the image's label (or tag set)."""
    engine = create_engine(database_url)
    acknowledged = {ann: pair for log in logs for ann, pair in log.acknowledged.items()}
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT a.id, a.image_id, c.name, a.undone_at, i.label_class_id, a.label_class_id"
                " FROM annotation a JOIN label_class c ON c.id = a.label_class_id"
                " JOIN image i ON i.id = a.image_id")).all()
            tag_rows = connection.execute(text(
                "SELECT a.id, a.image_id, a.undone_at, i.tagged_at FROM annotation a"
                " JOIN image i ON i.id = a.image_id WHERE a.label_class_id IS NULL")).all()
            given = _names_by(connection, "SELECT t.annotation_id, c.name FROM annotation_tag t"
                                          " JOIN label_class c ON c.id = t.label_class_id")
            current = _names_by(connection, "SELECT t.image_id, c.name FROM image_tag t"
                                            " JOIN label_class c ON c.id = t.label_class_id")
    finally:
        engine.dispose()
    stored = {row[0]: row for row in rows}
    stored_sets = {row[0]: row for row in tag_rows}
    lost = 0
    for annotation_id, (image_id, label) in acknowledged.items():
        if isinstance(label, list):  # a tag set: stored whole, and still the image's set
            row = stored_sets.get(annotation_id)
            lost += (row is None or row[1] != image_id or row[2] is not None or row[3] is None
                     or given.get(annotation_id, set()) != set(label)
                     or current.get(image_id, set()) != set(label))
            continue
        row = stored.get(annotation_id)
        if (row is None or row[1] != image_id or row[2] != label or row[3] is not None
                or row[4] != row[5]):
            lost += 1
    return lost


def _names_by(connection, query: str) -> dict[int, set[str]]:
    """{id: set of names} from rows of (id, name)."""
    names: dict[int, set[str]] = defaultdict(set)
    for key, name in connection.execute(text(query)):
        names[key].add(name)
    return names


def run_load(base_url: str, database_url: str, project_id: int, annotator_tokens: list[str],
             lead_token: str, true_label: Callable[[dict], Answer], duration_s: float,
             retrain_at: float = 0.5) -> LoadResult:
    """Run ``len(annotator_tokens)`` annotators for ``duration_s``; retrain at ``retrain_at``."""
    stop = threading.Event()
    logs = [ClientLog() for _ in annotator_tokens]
    threads = [threading.Thread(target=_annotate, daemon=True, name=f"annotator-{i}",
                                args=(base_url, project_id, token, true_label, stop, log))
               for i, (token, log) in enumerate(zip(annotator_tokens, logs, strict=True))]
    lead = requests.Session()
    lead.headers["Authorization"] = f"Bearer {lead_token}"
    started, client_cpu = time.monotonic(), time.process_time()
    for thread in threads:
        thread.start()
    retrain_status, job_id = "not triggered", None
    time.sleep(duration_s * retrain_at)
    response = lead.post(f"{base_url}/api/v1/projects/{project_id}/retrain", timeout=60)
    if response.status_code in (200, 201, 202):
        job_id = response.json()["job_id"]
        retrain_status = "queued"
    else:
        retrain_status = f"refused {response.status_code}: {response.text[:120]}"
    remaining = duration_s - (time.monotonic() - started)
    if remaining > 0:
        stop.wait(remaining)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.monotonic() - started
    client_cpu = time.process_time() - client_cpu
    if job_id is not None:
        retrain_status = _wait_for_job(lead, base_url, job_id)
    statuses: dict[int, int] = defaultdict(int)
    for log in logs:
        for status, count in log.statuses.items():
            statuses[status] += count
    return LoadResult(
        clients=len(annotator_tokens), duration_s=elapsed,
        requests=sum(statuses.values()),
        labels=sum(len(log.acknowledged) for log in logs),
        next_p50_ms=_percentile_ms([v for log in logs for v in log.next_latencies], 50),
        next_p99_ms=_percentile_ms([v for log in logs for v in log.next_latencies], 99),
        label_p50_ms=_percentile_ms([v for log in logs for v in log.label_latencies], 50),
        label_p99_ms=_percentile_ms([v for log in logs for v in log.label_latencies], 99),
        server_errors=sum(count for status, count in statuses.items() if status >= 500),
        conflicts=statuses.get(409, 0),
        double_handouts=_double_handouts(logs),
        lost_labels=_lost_labels(database_url, logs),
        retrain_status=retrain_status,
        client_errors=[error for log in logs for error in log.errors][:10],
        client_cpu_share=client_cpu / elapsed,
    )


def _wait_for_job(session: requests.Session, base_url: str, job_id: int,
                  timeout_s: float = 600) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = session.get(f"{base_url}/api/v1/jobs/{job_id}", timeout=60).json()
        if job["status"] not in ("queued", "running"):
            return f"{job['status']}: {job['message']}"
        time.sleep(0.5)
    return "still running"


# --- preparing a project to load -------------------------------------------------------

# Ten classes, each a base colour; an image's true class is the prefix of its file name.
CLASS_COLOURS = {
    "sea": (30, 80, 200), "sand": (220, 200, 140), "forest": (30, 120, 40),
    "snow": (240, 240, 245), "night": (15, 15, 30), "desert": (200, 120, 50),
    "meadow": (120, 200, 70), "rock": (110, 110, 110), "sunset": (240, 100, 80),
    "ice": (170, 220, 240),
}


def true_label_from_name(item: dict) -> str:
    """The class an annotator gives an image: the one its file name says."""
    return item["original_name"].replace("\\", "/").rsplit("/", 1)[-1].split("_", 1)[0]


def true_tags_from_name(item: dict) -> list[str]:
    """The tag set an annotator gives an image of a multi-label load project: the class its
    file name says; every third image also the next class, every seventh none at all (the
    explicit empty set), so sets of 0, 1 and 2 tags all travel."""
    name = item["original_name"].replace("\\", "/").rsplit("/", 1)[-1]
    tag, number = name.split("_", 1)[0], int(name.rsplit("_", 1)[-1].split(".")[0])
    if number % 7 == 0:
        return []
    names = list(CLASS_COLOURS)
    if number % 3 == 0:
        return [tag, names[(names.index(tag) + 1) % len(names)]]
    return [tag]


@dataclass
class PreparedProject:
    """A project ready to serve, with the credentials of its annotators and lead."""

    database_url: str
    project_id: int
    annotator_tokens: list[str]
    lead_token: str


def prepare_project(home, n_images: int, n_annotators: int, database_url: str | None = None,
                    seed: int = 0, multi_label: bool = False) -> PreparedProject:
    """Create a data home with an embedded ``n_images`` project and annotator tokens.

    The images are small generated PNGs (one colour per class plus noise); they are
    imported through the real importer and embedded with a fixed random 1280-wide
    projection of their colour layout, so rounds train on EfficientNet-sized vectors
    without paying for TensorFlow in a benchmark about serving.
    """
    from PIL import Image as PILImage

    from labeler import create_app
    from labeler.database import upgrade_database
    from labeler.embeddings import register_backbone
    from labeler.extensions import db
    from labeler.importer import import_paths
    from labeler.jobs import JobKind, run_inline
    from labeler.project_vectors import embed_project
    from labeler.projects import create_project
    from labeler.training import run_round
    from labeler.users import create_api_token, create_user
    from tests.builders import everyone_joins
    from tests.dbutil import database_config
    from tests.fakes import WideFakeBackbone

    home = Path(home)
    # The test session's database for this home (PostgreSQL runs), unless told otherwise.
    config: dict[str, object] = {"HOME": home, **database_config(home)}
    if database_url:
        config["DATABASE_URL"] = database_url
    app = create_app(config)
    upgrade_database(app)
    folder = home / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = list(CLASS_COLOURS)
    for index in range(n_images):
        name = names[index % len(names)]
        pixels = np.clip(np.array(CLASS_COLOURS[name]) + rng.normal(0, 40, (24, 24, 3)), 0, 255)
        PILImage.fromarray(pixels.astype(np.uint8)).save(folder / f"{name}_{index:06d}.png")
    backbone = WideFakeBackbone()
    register_backbone(backbone.spec.name, lambda cache_dir: backbone)
    with app.app_context():
        project = create_project("load", names, backbone=backbone.spec.name,
                                 multi_label=multi_label)
        import_paths(project, [folder])
        run_inline("embed", project.id, embed_project)
        run_inline(JobKind.RETRAIN, project.id, run_round)  # the cold-start round ranks the queue
        tokens = [create_api_token(create_user(f"annotator{i}", "password-123"))
                  for i in range(n_annotators)]
        lead_token = create_api_token(create_user("lead", "password-123", "lead"))
        everyone_joins()  # the annotators label this project
        url, project_id = str(db.engine.url.render_as_string(hide_password=False)), project.id
        db.session.remove()
        db.engine.dispose()
    shutil.rmtree(folder)  # imported: the store holds the images now
    return PreparedProject(url, project_id, tokens, lead_token)


def copy_prepared(prepared: PreparedProject, home, copy_home, suffix: str) -> PreparedProject:
    """A fresh copy of a prepared project (data directory and database), so every run of
    a benchmark starts from the same state instead of the previous run's leftovers."""
    from sqlalchemy import make_url

    shutil.copytree(home, copy_home)
    url = make_url(prepared.database_url)
    if url.get_backend_name() == "sqlite":
        copy_url = url.set(database=str(Path(copy_home) / Path(url.database).name))
    else:  # PostgreSQL: a database made from the prepared one as its template
        copy_url = url.set(database=f"{url.database}_{suffix}")
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{copy_url.database}"'))
                connection.execute(text(f'CREATE DATABASE "{copy_url.database}" '
                                        f'TEMPLATE "{url.database}"'))
        finally:
            admin.dispose()
    return PreparedProject(copy_url.render_as_string(hide_password=False), prepared.project_id,
                           prepared.annotator_tokens, prepared.lead_token)
