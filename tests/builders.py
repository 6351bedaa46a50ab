"""Data that several test modules build: projects of coloured images, labels, hostile names.

Test modules import these from here, never from one another (a test in
tests/test_layout.py checks that). Fixtures built from them are in ``tests/conftest.py``.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from labeler.annotations import record_label
from labeler.embeddings import register_backbone
from labeler.extensions import db
from labeler.importer import import_paths, import_uploads
from labeler.jobs import run_inline
from labeler.models import Annotation, Image, Job, JobStatus, Project, ProjectMember, User, utcnow
from labeler.project_vectors import embed_project
from labeler.projects import add_class, class_by_name, create_project
from labeler.queue import lease_next, submit_label
from labeler.training import run_round
from labeler.users import create_api_token, create_user
from tests import imagegen
from tests.fakes import FAKE_BACKBONE, FakeBackbone

PASSWORD = "correct-horse-battery"

# --- a project of coloured images, embedded with the fake backbone ---------------------------

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def colour_image(rgb, seed):
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(rgb) + rng.normal(0, 25, size=(48, 64, 3)), 0, 255)
    return imagegen.encode(PILImage.fromarray(pixels.astype(np.uint8)), "PNG")


def embedded_colour_project(folder, per_colour: int, seed_step: int, *,
                            multi_label: bool = False):
    """Project "colours": ``per_colour`` noisy images of each colour, imported and embedded
    with the fake backbone (file names start with their true colour). ``multi_label``:
    a tagging project "colour tags" whose tags are the colours."""
    register_backbone(FAKE_BACKBONE, lambda cache_dir: FakeBackbone())
    project = create_project("colour tags" if multi_label else "colours", list(COLOURS),
                             backbone=FAKE_BACKBONE, multi_label=multi_label)
    files = {f"{name}_{i}.png": colour_image(rgb, seed=i * seed_step + k)
             for k, (name, rgb) in enumerate(COLOURS.items()) for i in range(per_colour)}
    imagegen.write_files(folder, files)
    import_paths(project, [folder])
    assert run_inline("embed", project.id, embed_project).status == JobStatus.SUCCEEDED
    return project


def everyone_joins() -> None:
    """Every user becomes a member of every project with their global role, as the upgrade
    to project members did: the shared fixtures' annotators belong to their project."""
    have = set(db.session.execute(select(ProjectMember.project_id, ProjectMember.user_id)))
    for project_id in db.session.scalars(select(Project.id)):
        for user in db.session.scalars(select(User)):
            if (project_id, user.id) not in have:
                db.session.add(ProjectMember(project_id=project_id, user_id=user.id,
                                             role="lead" if user.is_lead else "annotator"))
    db.session.commit()


def true_colour(image: Image) -> str:
    return image.original_name.rsplit("/", 1)[-1].split("_")[0]


def images(project):
    return db.session.scalars(
        select(Image).where(Image.project_id == project.id).order_by(Image.id)).all()


# --- labels ----------------------------------------------------------------------------------


def label(project, image, user, name=None):
    return submit_label(project, image.id, class_by_name(project, name or true_colour(image)),
                        user)


def label_from_queue(project, user, n=12):
    """A cold-start round, then ``n`` labels as served by the queue (every colour appears)."""
    run_inline("retrain", project.id, run_round)
    for image in lease_next(project, user, n=n):
        label(project, image, user)


def trained(project, user, n=15):
    """A cold-start round, ``n`` labels from the queue, then a trained round."""
    run_inline("retrain", project.id, run_round)
    for image in lease_next(project, user, n=n):
        label(project, image, user)
    job = run_inline("retrain", project.id, run_round)
    assert job.status == JobStatus.SUCCEEDED, job.message
    return project


def label_all(project, user=None, every=1):
    """Label every ``every``-th image with its true colour (committed)."""
    for image in images(project)[::every]:
        record_label(image, class_by_name(project, true_colour(image)), user)
    db.session.commit()


def auth(token):
    return {"Authorization": f"Bearer {token}"}


# --- annotator activity on a fixed clock ------------------------------------------------------

NOW = datetime(2024, 5, 6, 14, 0, 0, tzinfo=UTC)


def at(seconds: float, now: datetime = NOW) -> datetime:
    """A moment ``seconds`` after two hours before ``now`` (12:00 on the test day)."""
    return now - timedelta(hours=2) + timedelta(seconds=seconds)


def forty_in_42_seconds(now: datetime = NOW) -> list[datetime]:
    """40 labels, the first 1.05 s after the page opened and then one every 1.05 s."""
    return [at(1.05 * (i + 1), now) for i in range(40)]


def server_now() -> datetime:
    """Now to the second: tests through HTTP, where the server reads its own clock, need
    their timestamps inside the rate window."""
    return utcnow().replace(microsecond=0)


def add_acts(project, user, times, *, source="manual", undone=()):
    """Annotations by ``user`` at ``times`` (relabelling the project's images in turn)."""
    image_ids = db.session.scalars(select(Image.id).where(Image.project_id == project.id)
                                   .order_by(Image.id)).all()
    class_id = project.classes[0].id
    for index, moment in enumerate(times):
        db.session.add(Annotation(
            project_id=project.id, image_id=image_ids[index % len(image_ids)],
            label_class_id=class_id, annotator_id=user.id, source=source, created_at=moment,
            undone_at=moment + timedelta(seconds=1) if index in undone else None))
    db.session.commit()


# --- hostile names ----------------------------------------------------------------------------

PAYLOAD = '<script>alert("x")</script><img src=x onerror=alert(1)>'
# Usernames may not contain spaces, and uploaded file names lose everything up to the last
# slash, so those two carry variants that survive validation and still break out of markup.
USER_PAYLOAD = '<script>alert("u")</script><svg/onload=alert(2)>'
# (No double quote in it: werkzeug's test client cannot send one in a multipart file name.)
FILE_PAYLOAD = "'><script>alert('f')<img src=x onerror=alert(3)>.png"


def image_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (40, 30), (200, 30, 90)).save(buffer, format=fmt)
    return buffer.getvalue()


def seed_hostile_names(target, lead) -> dict[str, int]:
    """Give project ``target`` (and the instance) a payload in every user-supplied name.

    Returns ids worth visiting: the hostile user's, the image named with the full payload.
    """
    target.name = PAYLOAD
    payload_class = add_class(target, PAYLOAD + " class")
    db.session.commit()
    hostile = create_user(USER_PAYLOAD, PASSWORD, "annotator")
    everyone_joins()  # the hostile user sees the project, so every page shows the payloads
    create_api_token(hostile, name=PAYLOAD)
    report = import_uploads(target, [FileStorage(io.BytesIO(image_bytes("PNG")),
                                                 filename=FILE_PAYLOAD)], annotator=lead)
    assert report.imported == 1, report.summary()
    rows = db.session.query(Image).filter_by(project_id=target.id).order_by(Image.id).all()
    # The importer cannot produce a slash in a name; a row may still hold one (older data).
    rows[0].original_name = PAYLOAD + ".png"
    rows[1].original_name = "<img src=x onerror=window.__pwned=1>.png"
    for image in rows[:6]:
        record_label(image, payload_class, hostile)
    db.session.add(Job(kind="embed", project_id=target.id, status=JobStatus.FAILED.value,
                       message=f"could not read {PAYLOAD}"))
    db.session.commit()
    return {"user_id": hostile.id, "image_id": rows[0].id}


# --- pickle payloads (nothing may ever unpickle them) -------------------------------------


class CreatesAFile:
    """A pickle payload: unpickling it opens (creates) ``path`` for writing."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def pickled_head_arrays(marker) -> bytes:
    """An .npz that looks like a head but holds a pickle (an object array) among its arrays."""
    buffer = io.BytesIO()
    np.savez(buffer, kind=np.array("logistic"), format=np.array(1),
             coef_=np.array([CreatesAFile(marker)], dtype=object))
    return buffer.getvalue()


def csrf(client, project):
    """Headers with the session's CSRF token, read from a page as the browser would."""
    page = client.get(f"/projects/{project.id}/label").text
    return {"X-CSRFToken": page.split('data-csrf="')[1].split('"')[0]}
