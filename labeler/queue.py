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

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update

from .annotations import record_label, undo_annotation
from .errors import Forbidden, LabelerError, NotFound
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
