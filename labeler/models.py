"""Database models (SQLAlchemy 2.x, typed).

The schema is created only by the Alembic revisions in ``migrations/``; a test checks that
upgrading an empty database gives exactly these models.

Indexes are chosen for 1,000,000 images in one project: every hot query (images of a
project by label, the latest annotation of an image, counts per class, jobs of a project)
is answered from an index, never by scanning the annotations table.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def utcnow() -> datetime:
    """Timezone-aware 'now' used for every timestamp column."""
    return datetime.now(UTC)


def rfc3339(value: datetime | None) -> str | None:
    """``value`` in UTC as RFC 3339 with its offset (``2026-12-03T08:08:23.079114+00:00``).

    SQLite hands back naive datetimes; every timestamp is written in UTC (``utcnow``), so a
    naive one is UTC. PostgreSQL hands back the session's time zone, converted here.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


class Role(enum.StrEnum):
    LEAD = "lead"
    ANNOTATOR = "annotator"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Project(db.Model):
    __tablename__ = "project"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Free-form per-project settings (strategy, retrain-every-N, backbone, ...); the code
    # that reads a setting owns its default.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    classes: Mapped[list[LabelClass]] = relationship(
        back_populates="project", order_by="LabelClass.position", cascade="all, delete-orphan"
    )

    def active_classes(self) -> list[LabelClass]:
        """Classes not archived, in display order."""
        return [c for c in self.classes if not c.archived]


class LabelClass(db.Model):
    __tablename__ = "label_class"
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_label_class_project_name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    key: Mapped[str | None] = mapped_column(String(1))  # keyboard shortcut
    colour: Mapped[str] = mapped_column(String(7))  # "#rrggbb"
    position: Mapped[int] = mapped_column(Integer, default=0)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    project: Mapped[Project] = relationship(back_populates="classes")


class Image(db.Model):
    __tablename__ = "image"
    __table_args__ = (
        UniqueConstraint("project_id", "sha256", name="uq_image_project_sha256"),
        # "images of project P whose current label is C" and per-class counts.
        Index("ix_image_project_label", "project_id", "label_class_id"),
        # The annotators' queue: unlabelled images in the order the last round chose.
        # Partial, so labelled images never sit at the head of the index.
        Index("ix_image_queue", "project_id", "queue_rank",
              sqlite_where=text("label_class_id IS NULL"),
              postgresql_where=text("label_class_id IS NULL")),
        # Gallery: "predicted sea with confidence >= 0.9".
        Index("ix_image_prediction", "project_id", "predicted_class_id", "confidence"),
        Index("ix_image_lease", "leased_to_id", "lease_expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    original_name: Mapped[str] = mapped_column(String(1024))
    format: Mapped[str] = mapped_column(String(16))  # Pillow's format name: JPEG, PNG, ...
    width: Mapped[int] = mapped_column(Integer)  # after EXIF orientation
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The current label, kept in step with the annotation history by labeler.annotations in
    # the same transaction; the history (Annotation rows) is the record, this is its index.
    label_class_id: Mapped[int | None] = mapped_column(
        ForeignKey("label_class.id", ondelete="SET NULL")
    )

    # Written by each retrain round (labeler.training) for every image.
    predicted_class_id: Mapped[int | None] = mapped_column(
        ForeignKey("label_class.id", ondelete="SET NULL"))
    confidence: Mapped[float | None] = mapped_column(Float)
    acquisition_score: Mapped[float | None] = mapped_column(Float)  # higher = ask sooner
    # 0 = serve first; 64-bit because skipped images rank at 2e9 + id (labeler.queue).
    # SQLite's INTEGER is 64-bit already, hence the variant (see migration 3c1f7e9b2d40).
    queue_rank: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"))
    prediction_round: Mapped[int | None] = mapped_column(Integer)  # ModelRound.number
    suspected_error: Mapped[bool] = mapped_column(Boolean, default=False)
    duplicate_group: Mapped[int | None] = mapped_column(Integer)
    # A lease reserves an image for one annotator until it expires (labeler.queue).
    leased_to_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    label_class: Mapped[LabelClass | None] = relationship(foreign_keys=[label_class_id])
    predicted_class: Mapped[LabelClass | None] = relationship(
        foreign_keys=[predicted_class_id])


class Annotation(db.Model):
    """One labelling act. Relabelling adds a row; undo marks a row, nothing is deleted."""

    __tablename__ = "annotation"
    __table_args__ = (
        Index("ix_annotation_image_created", "image_id", "created_at"),
        Index("ix_annotation_project_created", "project_id", "created_at"),
        Index("ix_annotation_annotator_created", "annotator_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # project_id is denormalised from the image so per-project history and rates need no join.
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    label_class_id: Mapped[int] = mapped_column(ForeignKey("label_class.id"))
    annotator_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(32), default="manual")  # manual, folder, import
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    image: Mapped[Image] = relationship()
    label_class: Mapped[LabelClass] = relationship()
    annotator: Mapped[User | None] = relationship()


class User(UserMixin, db.Model):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.ANNOTATOR.value)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def is_active(self) -> bool:  # Flask-Login: deactivated users cannot log in
        return self.active

    @property
    def is_lead(self) -> bool:
        return self.role == Role.LEAD


class ApiToken(db.Model):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()


class Job(db.Model):
    """A background job (import, embed, retrain) with progress the UI polls."""

    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_project_kind_status", "project_id", "kind", "status"),
        # At most one queued-or-running job of a kind per project, enforced by the database
        # itself so that two processes (server and CLI) cannot both start one.
        Index("uq_job_one_active", "project_id", "kind", unique=True,
              sqlite_where=text("status IN ('queued', 'running')"),
              postgresql_where=text("status IN ('queued', 'running')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Who runs it ("host:pid") and when it last reported: how a job whose process died is
    # told apart from one that is merely slow.
    owner: Mapped[str] = mapped_column(String(255), default="")
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def is_active(self) -> bool:
        return self.status in (JobStatus.QUEUED, JobStatus.RUNNING)


class JobChunk(db.Model):
    """One share of a Job that queue workers run separately (a slice of an embed job).

    ``done`` is absolute, not an increment, so a chunk retried after its worker died
    overwrites its count instead of adding it twice; the Job's progress is the sum.
    """

    __tablename__ = "job_chunk"
    __table_args__ = (UniqueConstraint("job_id", "number", name="uq_job_chunk_job_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    image_ids: Mapped[list[int]] = mapped_column(JSON)
    size: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    unreadable: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str] = mapped_column(String(255), default="")  # last worker, "host:pid"
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ModelRound(db.Model):
    """One retrain of a project's classifier head and the quality it reached."""

    __tablename__ = "model_round"
    __table_args__ = (
        UniqueConstraint("project_id", "number", name="uq_model_round_project_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    n_labels: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    strategy: Mapped[str] = mapped_column(String(32), default="")
    duration_s: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text, default="")  # why it failed, or what it did


#: The largest id a row can have on both databases: PostgreSQL's ``integer`` columns
#: (SQLite's are 64-bit). The API refuses larger ids before they reach a query.
ID_MAX = 2**31 - 1
