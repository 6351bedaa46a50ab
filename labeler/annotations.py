"""Recording labels. The history is kept: relabelling adds a row, undo marks one.

``Image.label_class_id`` mirrors the latest annotation not undone and is updated in the
same transaction as the history, so reading "the current label" never scans history.
"""

from __future__ import annotations

from sqlalchemy import select

from .extensions import db
from .models import Annotation, Image, LabelClass, User, utcnow


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


def undo_annotation(annotation: Annotation, by: User | None = None) -> None:
    """Mark an annotation undone (by ``by``) and restore the image's previous current label."""
    if annotation.undone_at is not None:
        return
    annotation.undone_at = utcnow()
    annotation.undone_by_id = by.id if by else None
    db.session.flush()
    latest = db.session.scalar(
        select(Annotation)
        .where(Annotation.image_id == annotation.image_id, Annotation.undone_at.is_(None))
        .order_by(Annotation.created_at.desc(), Annotation.id.desc())
        .limit(1)
    )
    image = db.session.get(Image, annotation.image_id)
    if image is not None:
        image.label_class_id = latest.label_class_id if latest else None
    db.session.flush()
