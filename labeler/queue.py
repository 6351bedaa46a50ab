"""Serving the next images to annotators: leases, expiry, labels, skips and undo.

The order comes precomputed from the last round (``Image.queue_rank``); serving is one
indexed query, never a rescoring. Handing out images is one statement, ``WITH picked AS
(SELECT ... LIMIT n FOR UPDATE SKIP LOCKED) UPDATE ... WHERE id IN picked`` that also
re-checks that each row is still free:
SQLite serialises writers (and ignores the locking clause), and on PostgreSQL a concurrent
lease skips the rows another transaction is taking instead of waiting for them or taking
them too, so two annotators can never lease the same image. A lease not answered in time
simply expires back into the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update

from .annotations import record_label, undo_annotation
from .errors import Conflict, Forbidden, LabelerError, NotFound
from .extensions import commit_keep_loaded, db
from .models import Annotation, Image, LabelClass, Project, User, utcnow
from .projects import require_active

LEASE_DURATION = timedelta(minutes=10)
# New images (no round has ranked them yet) queue after every ranked image, in import
# order; skipped images go after those until the next round ranks them again.
UNRANKED_BASE = 1_000_000_000
SKIPPED_BASE = 2_000_000_000


class LeaseConflict(LabelerError):
    """The image is reserved for another annotator right now."""


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every timestamp we store is UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=utcnow().tzinfo)
    return moment


def _free(now: datetime) -> ColumnElement[bool]:
    """Unlabelled and not under a live lease."""
    return and_(Image.label_class_id.is_(None),
                or_(Image.lease_expires_at.is_(None), Image.lease_expires_at <= now))


def lease_next(project: Project, user: User, n: int = 1,
               duration: timedelta = LEASE_DURATION) -> list[Image]:
    """The next ``n`` images for ``user``, each reserved for them until the lease expires.

    Images the user already holds come first (a reload or prefetch does not skip them),
    and their leases are renewed; the rest are the highest-ranked free images.
    """
    if n < 1:
        return []
    now = utcnow()
    expires = now + duration
    # Each UPDATE hands back the rows it changed (RETURNING), so serving is two statements
    # and no re-read. Every live lease of the user is renewed: they are still at work.
    held = list(db.session.scalars(
        update(Image)
        .where(Image.project_id == project.id, Image.leased_to_id == user.id,
               Image.lease_expires_at > now, Image.label_class_id.is_(None))
        .values(lease_expires_at=expires)
        .returning(Image)
        .execution_options(synchronize_session=False, populate_existing=True)))
    if len(held) < n:
        picked = (
            select(Image.id)
            .where(Image.project_id == project.id, _free(now))
            .order_by(Image.queue_rank, Image.id)
            .limit(n - len(held))
            # PostgreSQL: rows a concurrent lease has locked are passed over, and the LIMIT
            # takes the next free ones instead. SQLite compiles no locking clause.
            .with_for_update(skip_locked=True)
            # A CTE, materialised, so the pick runs exactly once. As a plain IN (subquery)
            # PostgreSQL may plan a semi-join that re-runs it per row, and each re-run
            # skips the rows this very statement just updated, so it leased every image.
            .cte("picked").prefix_with("MATERIALIZED", dialect="postgresql")
        )
        held += db.session.scalars(
            # Re-checking "free" here means a row some other writer took between the
            # pick's snapshot and this update is left alone, on any backend.
            update(Image).where(Image.id.in_(select(picked.c.id)), _free(now))
            .values(leased_to_id=user.id, lease_expires_at=expires)
            .returning(Image)
            .execution_options(synchronize_session=False, populate_existing=True))
    commit_keep_loaded()  # the response reads project, user and images next
    held.sort(key=lambda image: (image.queue_rank if image.queue_rank is not None
                                 else SKIPPED_BASE * 2, image.id))
    return held[:n]


def holds_lease(image: Image, user: User, now: datetime | None = None) -> bool:
    """Whether ``user`` may label ``image`` now without taking it from someone else."""
    now = now or utcnow()
    expiry = _aware(image.lease_expires_at)
    return image.leased_to_id in (None, user.id) or expiry is None or expiry <= now


def submit_label(project: Project, image_id: int, label_class: LabelClass,
                 user: User) -> Annotation:
    """Record ``user``'s label for an image and end its lease (committed).

    Raises:
        NotFound: the image is not in this project.
        LeaseConflict: another annotator holds a live lease on it.
        LabelerError: the class is archived or belongs to another project.
    """
    image = db.session.get(Image, image_id)
    if image is None or image.project_id != project.id:
        raise NotFound(f"Image {image_id} is not in project {project.name!r}.")
    (annotation,) = label_images(project, [(image, label_class)], user)
    return annotation


def label_images(project: Project, labels: list[tuple[Image, LabelClass]], user: User, *,
                 source: str = "manual", respect_leases: bool = True) -> list[Annotation]:
    """Record ``user``'s labels for images of ``project``, all or none (committed).

    The one way labels are given by hand: the labelling page one at a time, the gallery
    many at once (``respect_leases=False``: a lead labelling a selection is not stopped by
    an annotator's lease on one of the images). Every label is checked before any is
    written. A label ends the image's lease unless the lease is someone else's and live.

    Raises:
        LeaseConflict: ``respect_leases`` and another annotator holds a live lease.
        LabelerError: a class is archived or belongs to another project.
    """
    now = utcnow()
    for _, label_class in labels:
        if label_class.project_id != project.id:
            raise LabelerError(f"Class {label_class.name!r} belongs to another project.")
    require_active(label_class for _, label_class in labels)
    if respect_leases:
        for image, _ in labels:
            if not holds_lease(image, user, now):
                raise LeaseConflict(f"Image {image.id} is being labelled by someone else "
                                    "right now; ask for the next image instead.")
    try:
        annotations = []
        for image, label_class in labels:
            if holds_lease(image, user, now):
                # Cleared before record_label flushes: one UPDATE of the image, not two.
                image.leased_to_id, image.lease_expires_at = None, None
            annotations.append(record_label(image, label_class, user, source=source))
        commit_keep_loaded()  # the response serialises these annotations
    except Exception:
        db.session.rollback()
        raise
    return annotations


def skip(project: Project, image_id: int, user: User) -> None:
    """Put an image back at the end of the queue (until the next round ranks it)."""
    image = db.session.get(Image, image_id)
    if image is None or image.project_id != project.id:
        raise NotFound(f"Image {image_id} is not in project {project.name!r}.")
    if image.leased_to_id == user.id:
        image.leased_to_id, image.lease_expires_at = None, None
    image.queue_rank = SKIPPED_BASE + image.id
    db.session.commit()


def undo(annotation_id: int, user: User) -> Annotation:
    """Undo an annotation; annotators may undo only their own (committed).

    The image goes back to its previous label, or to the queue if it had none.
    """
    annotation = db.session.get(Annotation, annotation_id)
    if annotation is None:
        raise NotFound(f"Annotation {annotation_id} does not exist.")
    if annotation.annotator_id != user.id and not user.is_lead:
        raise Forbidden("You can only undo your own labels; ask a project lead to undo "
                        "someone else's.")
    undo_annotation(annotation)
    image = db.session.get(Image, annotation.image_id)
    if image is not None and image.label_class_id is None:
        # The person undoing is about to label it again: reserve it for them.
        image.leased_to_id, image.lease_expires_at = user.id, utcnow() + LEASE_DURATION
    db.session.commit()
    return annotation


def release_expired_leases(now: datetime | None = None) -> int:
    """Clear expired leases (housekeeping: serving already treats them as free)."""
    now = now or utcnow()
    result = db.session.execute(
        update(Image).where(and_(Image.lease_expires_at.is_not(None),
                                 Image.lease_expires_at <= now))
        .values(leased_to_id=None, lease_expires_at=None)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount or 0


# --- grid mode: many images the model predicts as one class, confirmed at once -------------

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
        picked = (select(Image.id).where(in_class, _free(now))
                  .order_by(*order).limit(n - len(held))
                  .with_for_update(skip_locked=True)  # as in lease_next: see there
                  .cte("picked").prefix_with("MATERIALIZED", dialect="postgresql"))
        held += db.session.scalars(
            update(Image).where(Image.id.in_(select(picked.c.id)), _free(now))
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
