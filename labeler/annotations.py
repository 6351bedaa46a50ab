"""Recording labels. The history is kept: relabelling adds a row, undo marks one.

``Image.label_class_id`` mirrors the latest annotation not undone and is updated in the
same transaction as the history, so reading "the current label" never scans history.
Multi-label projects do the same with tag sets: an annotation's tags are AnnotationTag
rows (none = the explicit empty set), mirrored into ImageTag rows and ``Image.tagged_at``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, insert, select

from .extensions import db
from .models import Annotation, AnnotationTag, Image, ImageTag, LabelClass, User, utcnow


def record_label(image: Image, label_class: LabelClass, annotator: User | None = None,
                 source: str = "manual") -> Annotation:
    """Add an annotation and make it the image's current label (flushed, not committed)."""
    annotation = Annotation(
        project_id=image.project_id, image_id=image.id, label_class_id=label_class.id,
        annotator_id=annotator.id if annotator else None, source=source,
    )
    db.session.add(annotation)
    image.label_class_id = label_class.id
    db.session.flush()
    return annotation


def record_tags(image: Image, tags: Sequence[LabelClass], annotator: User | None = None,
                source: str = "manual") -> Annotation:
    """Add a multi-label annotation, the full set of tags affirmed (empty = none of them),
    and make it the image's current tag set (flushed, not committed)."""
    annotation = Annotation(
        project_id=image.project_id, image_id=image.id, label_class_id=None,
        annotator_id=annotator.id if annotator else None, source=source,
    )
    db.session.add(annotation)
    db.session.flush()
    tag_ids = sorted({tag.id for tag in tags})
    if tag_ids:
        db.session.execute(insert(AnnotationTag), [
            {"annotation_id": annotation.id, "label_class_id": tag_id} for tag_id in tag_ids])
    _mirror_tags(image, tag_ids, annotation.created_at)
    return annotation


def _mirror_tags(image: Image, tag_ids: Iterable[int] | None, tagged_at: object) -> None:
    """Make ``tag_ids`` the image's current tag set; None = not labelled at all."""
    db.session.execute(delete(ImageTag).where(ImageTag.image_id == image.id))
    rows = [{"image_id": image.id, "label_class_id": tag_id} for tag_id in tag_ids or ()]
    if rows:
        db.session.execute(insert(ImageTag), rows)
    image.tagged_at = tagged_at if tag_ids is not None else None
    db.session.flush()


def undo_annotation(annotation: Annotation) -> None:
    """Mark an annotation undone and restore the image's previous current label (or set)."""
    if annotation.undone_at is not None:
        return
    annotation.undone_at = utcnow()
    db.session.flush()
    latest = db.session.scalar(
        select(Annotation)
        .where(Annotation.image_id == annotation.image_id, Annotation.undone_at.is_(None))
        .order_by(Annotation.created_at.desc(), Annotation.id.desc())
        .limit(1)
    )
    image = db.session.get(Image, annotation.image_id)
    if image is None:
        return
    if annotation.label_class_id is None:  # a tag set: restore the previous set, or none
        previous = annotation_tag_ids([latest.id])[latest.id] if latest else None
        _mirror_tags(image, previous, latest.created_at if latest else None)
    else:
        image.label_class_id = latest.label_class_id if latest else None
    db.session.flush()


def annotation_tag_ids(annotation_ids: Iterable[int]) -> dict[int, list[int]]:
    """The tag (class) ids of each annotation, in one query; [] for an empty set."""
    ids = list(annotation_ids)
    tags: dict[int, list[int]] = {annotation_id: [] for annotation_id in ids}
    if ids:
        for annotation_id, class_id in db.session.execute(
                select(AnnotationTag.annotation_id, AnnotationTag.label_class_id)
                .where(AnnotationTag.annotation_id.in_(ids))
                .order_by(AnnotationTag.annotation_id, AnnotationTag.label_class_id)):
            tags[annotation_id].append(class_id)
    return tags


def image_tag_ids(image_ids: Iterable[int]) -> dict[int, list[int]]:
    """The current tag (class) ids of each image, in one query (no entry: no tags)."""
    ids = list(image_ids)
    tags: dict[int, list[int]] = defaultdict(list)
    if ids:
        for image_id, class_id in db.session.execute(
                select(ImageTag.image_id, ImageTag.label_class_id)
                .where(ImageTag.image_id.in_(ids))
                .order_by(ImageTag.image_id, ImageTag.label_class_id)):
            tags[image_id].append(class_id)
    return dict(tags)
