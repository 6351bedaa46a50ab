"""The tables of multi-label (tagging) projects: tag sets and per-tag scores.

An annotation of a multi-label image records the set of tags the annotator affirmed as
AnnotationTag rows (none: the explicit empty set); the image's current set is mirrored in
ImageTag rows, and the last round's probability of each tag in ImageTagScore. Re-exported
by ``labeler.models``, which the rest of the code imports them from.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db


class AnnotationTag(db.Model):
    """One tag a multi-label annotation affirmed; no rows is the explicit empty set."""

    __tablename__ = "annotation_tag"

    annotation_id: Mapped[int] = mapped_column(
        ForeignKey("annotation.id", ondelete="CASCADE"), primary_key=True)
    # Like Annotation.label_class_id: the history keeps a class from being deleted.
    label_class_id: Mapped[int] = mapped_column(ForeignKey("label_class.id"), primary_key=True)


class ImageTag(db.Model):
    """A tag of an image's current tag set (the mirror of its latest annotation not undone)."""

    __tablename__ = "image_tag"
    __table_args__ = (
        # "images tagged X" and per-tag counts.
        Index("ix_image_tag_class_image", "label_class_id", "image_id"),
    )

    image_id: Mapped[int] = mapped_column(
        ForeignKey("image.id", ondelete="CASCADE"), primary_key=True)
    label_class_id: Mapped[int] = mapped_column(
        ForeignKey("label_class.id", ondelete="CASCADE"), primary_key=True)


class ImageTagScore(db.Model):
    """The last round's probability that an image has a tag (multi-label projects)."""

    __tablename__ = "image_tag_score"
    __table_args__ = (
        # Gallery: "predicted X" (probability >= X's threshold) and confidence ranges.
        Index("ix_image_tag_score_class_probability", "label_class_id", "probability"),
    )

    image_id: Mapped[int] = mapped_column(
        ForeignKey("image.id", ondelete="CASCADE"), primary_key=True)
    label_class_id: Mapped[int] = mapped_column(
        ForeignKey("label_class.id", ondelete="CASCADE"), primary_key=True)
    probability: Mapped[float] = mapped_column(Float)
