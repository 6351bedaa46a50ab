"""Grid mode: many images the model predicts as one class, confirmed in one keystroke.

A grid is leased like the single-image queue's images (``labeler.queue``: one pick that
PostgreSQL's SKIP LOCKED keeps apart from concurrent picks, re-checked in the UPDATE), so
two annotators never hold the same image; answering it labels the confirmed images in one
transaction through ``queue.label_images`` and sends the deselected ones to the head of
the single-image queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update

from .errors import Conflict, NotFound
from .extensions import commit_keep_loaded, db
from .models import Image, LabelClass, Project, User, utcnow
from .queue import (
    LEASE_DURATION,
    SKIPPED_BASE,
    LeaseConflict,
    free_now,
    holds_lease,
    label_images,
)

#: The calibrated confidence band grids draw from. Above 0.98 the prediction is already as
#: good as the auto-tags the export keeps, so a human check buys the model little. Below
#: 0.7 the guess is too often wrong: on the demo after one round (100 labels) images at
#: 0.5-0.7 were right 55 % of the time, and grids from 0.5 kept 79 % of their tiles against
#: 85 % from 0.7, 237 against 318 labels a minute (bench/grid_mode.py).
GRID_BAND = (0.7, 0.98)
#: Within the band, the most confident first ("confidence") or the queue's order ("queue":
#: the most informative first, but those are the ones the model is least sure of: on the
#: demo the annotator deselected half of each grid, and labelled 4x slower).
GRID_ORDER = "confidence"
#: Fewer images than this in every class's band: single-image mode is as fast.
GRID_MIN = 4
GRID_SIZES = (12, 24)
# Images an annotator deselected in a grid: the model was wrong about them, which makes them
# the most informative images to ask next, so they lead the single-image queue and stay out
# of grids until the next round re-predicts (and re-ranks) them.
REJECTED_BASE = -1_000_000_000


@dataclass
class Grid:
    """A leased grid: the class, its images in queue order; or why there is none."""

    label_class: LabelClass | None
    images: list[Image]
    message: str = ""


def _grid_candidates(project: Project, user: User, now: datetime) -> ColumnElement[bool]:
    """Unlabelled images in the band, free or held by ``user``, not rejected from a grid."""
    low, high = GRID_BAND
    return and_(Image.project_id == project.id, Image.label_class_id.is_(None),
                Image.confidence >= low, Image.confidence <= high,
                Image.predicted_class_id.is_not(None),
                or_(Image.queue_rank.is_(None), Image.queue_rank >= 0),
                or_(Image.lease_expires_at.is_(None), Image.lease_expires_at <= now,
                    Image.leased_to_id == user.id))


def _grid_class(project: Project, user: User, now: datetime) -> tuple[int | None, int]:
    """The active class with the most candidates (the user's own grid first) and its count."""
    held = func.sum(case((and_(Image.leased_to_id == user.id, Image.lease_expires_at > now),
                          1), else_=0))
    row = db.session.execute(
        select(Image.predicted_class_id, func.count(Image.id).label("n"))
        .join(LabelClass, LabelClass.id == Image.predicted_class_id)
        .where(_grid_candidates(project, user, now), LabelClass.archived.is_(False))
        .group_by(Image.predicted_class_id)
        # A reload keeps the grid the user holds; otherwise the fullest band wins.
        .order_by(held.desc(), func.count(Image.id).desc(), Image.predicted_class_id)
        .limit(1)).first()
    return (row[0], row[1]) if row else (None, 0)


def lease_grid(project: Project, user: User, n: int = 16,
               duration: timedelta = LEASE_DURATION) -> Grid:
    """Up to ``n`` images the model predicts as one class, all leased to ``user`` (committed).

    The class is the one with the most unlabelled, unleased images predicted in
    ``GRID_BAND``; its images come in ``GRID_ORDER``, leased exactly as ``lease_next``
    leases (a pick that skips rows other transactions lock, re-checked in the UPDATE), so
    two annotators never share an image. Images the user already holds in that class come
    first and are renewed. No grid (``label_class`` None, a ``message`` saying why) before
    a trained round or when no class has ``GRID_MIN`` images in the band.
    """
    n = max(GRID_SIZES[0], min(GRID_SIZES[1], n))
    now = utcnow()
    class_id, available = _grid_class(project, user, now)
    if class_id is None or available < GRID_MIN:
        predicted = db.session.scalar(
            select(Image.id).where(Image.project_id == project.id,
                                   Image.predicted_class_id.is_not(None)).limit(1))
        message = ("Grid mode needs a trained round; label in single-image mode first."
                   if predicted is None else
                   f"No class has {GRID_MIN} or more unlabelled images the model predicts with "
                   f"{GRID_BAND[0]:.0%}–{GRID_BAND[1]:.0%} confidence; label in single-image "
                   "mode until the next round.")
        db.session.rollback()
        return Grid(None, [], message)
    expires = now + duration
    in_class = and_(_grid_candidates(project, user, now), Image.predicted_class_id == class_id)
    held = list(db.session.scalars(
        update(Image)
        .where(in_class, Image.leased_to_id == user.id, Image.lease_expires_at > now)
        .values(lease_expires_at=expires)
        .returning(Image)
        .execution_options(synchronize_session=False, populate_existing=True)))
    if len(held) < n:
        order = ((Image.queue_rank, Image.id) if GRID_ORDER == "queue"
                 else (Image.confidence.desc(), Image.id))
        picked = (select(Image.id).where(in_class, free_now(now))
                  .order_by(*order).limit(n - len(held))
                  .with_for_update(skip_locked=True)  # as in lease_next: see there
                  .cte("picked").prefix_with("MATERIALIZED", dialect="postgresql"))
        held += db.session.scalars(
            update(Image).where(Image.id.in_(select(picked.c.id)), free_now(now))
            .values(leased_to_id=user.id, lease_expires_at=expires)
            .returning(Image)
            .execution_options(synchronize_session=False, populate_existing=True))
    commit_keep_loaded()
    held.sort(key=lambda image: (-image.confidence, image.id) if GRID_ORDER != "queue" else
              (image.queue_rank if image.queue_rank is not None else SKIPPED_BASE * 2, image.id))
    label_class = db.session.get(LabelClass, class_id)
    if not held:  # every candidate went to someone else in the meantime
        return Grid(None, [], "Other annotators took these images a moment ago; load the "
                              "grid again.")
    return Grid(label_class, held[:n])


def answer_grid(project: Project, user: User, label_class: LabelClass,
                confirm: list[int], reject: list[int]) -> tuple[int, int]:
    """Label ``confirm`` with ``label_class`` and release ``reject``, all or none (committed).

    Every image must be in the project and leased to ``user`` (their lease may have run
    out, as long as nobody has taken the image since). Rejected images lead the
    single-image queue (``REJECTED_BASE``) and stay out of grids until the next round.
    Returns the counts (labelled, released).

    Raises:
        Conflict: an image is in both lists.
        NotFound: an id is not an image of this project.
        LeaseConflict: an image is not leased to ``user`` (another annotator's, labelled,
            or never handed to them).
        LabelerError: the class is archived or belongs to another project.
    """
    both = set(confirm) & set(reject)
    if both:
        raise Conflict(f"Image {min(both)} is both confirmed and rejected; send it in one of "
                       "the two lists.")
    ids = [*confirm, *reject]
    found = {image.id: image for image in db.session.scalars(
        select(Image).where(Image.id.in_(ids), Image.project_id == project.id))}
    missing = [image_id for image_id in ids if image_id not in found]
    if missing:
        raise NotFound(f"Image {missing[0]} is not in project {project.name!r}; send the ids "
                       "of the grid you were given.")
    now = utcnow()
    for image_id in ids:
        image = found[image_id]
        if image.leased_to_id != user.id or not holds_lease(image, user, now):
            raise LeaseConflict(f"Image {image_id} is not leased to you (it was labelled, or "
                                "another annotator has it); load a new grid.")
    for image_id in reject:
        image = found[image_id]
        image.leased_to_id, image.lease_expires_at = None, None
        image.queue_rank = REJECTED_BASE + image.id
    # label_images commits the releases with the labels, or rolls both back.
    try:
        labelled = label_images(project, [(found[i], label_class) for i in confirm], user)
    except Exception:
        db.session.rollback()
        raise
    return len(labelled), len(reject)
