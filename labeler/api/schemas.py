"""The response shapes of the JSON API, declared once as pydantic models.

Each model validates what a view returns (``labeler.api.spec``: a response that does not
fit its model is a bug and fails loudly) and is the schema the OpenAPI document publishes.
Every model is closed (``extra="forbid"``), so a field added to a response without being
declared here fails the tests instead of drifting from the document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .round_schemas import Calibration, FineTune, LabelQuality, Outlook
from .schemas_base import Count, Fraction, Shape, Timestamp


class Error(Shape):
    """Every error: a short title and a sentence saying what went wrong and what to do."""

    error: str = Field(description="A short title such as 'Bad request'.")
    detail: str = Field(description="What went wrong and what to do next, in a sentence.")


class LabelClass(Shape):
    id: int
    name: str
    key: str | None = Field(description="Keyboard shortcut on the labelling page.")
    colour: str = Field(description="CSS colour, e.g. '#1f77b4'.")
    archived: bool


class Counts(Shape):
    images: Count
    labelled: Count
    unlabelled: Count
    per_class: dict[str, Count] = Field(description="Labelled images per class name.")


class Project(Shape):
    id: int
    name: str
    classes: list[LabelClass]
    counts: Counts


class ProjectList(Shape):
    projects: list[Project] = Field(description="The projects, by name.")


class Me(Shape):
    username: str
    role: Literal["lead", "annotator"]


class Prediction(Shape):
    label: str
    confidence: Fraction


class Probability(Shape):
    label: str
    probability: float


class Neighbour(Shape):
    image_id: int
    label: str
    similarity: float


class Reason(Shape):
    """Why the queue served this image, and what the model thinks of it."""

    strategy: str = Field(description="Sampling strategy of the round that ranked the image.")
    score: float | None
    queue_rank: float | None
    round: int | None
    round_trained: bool | None = Field(
        description="Whether the ranking round trained a model (cold start does not).")
    summary: str = Field(description="Why the image was chosen, in one plain sentence.")
    probabilities: list[Probability]
    neighbours: list[Neighbour]
    note: str


PIXELATED = ("Smaller than pages draw it: show it with crisp pixels (CSS image-rendering: "
             "pixelated), not smoothed.")


class ImageItem(Shape):
    image_id: int
    image_url: str
    thumbnail_url: str
    original_name: str
    width: int | None
    height: int | None
    pixelated: bool = Field(description=PIXELATED)
    prediction: Prediction | None
    reason: Reason


class NextImages(Shape):
    items: list[ImageItem] = Field(
        description="The leased images (empty when the queue is exhausted).")


class GalleryItem(Shape):
    image_id: int
    thumbnail_url: str
    detail_url: str
    original_name: str
    width: int
    height: int
    pixelated: bool = Field(description=PIXELATED)
    label: str | None
    label_colour: str | None
    predicted: str | None
    predicted_colour: str | None
    confidence: float | None
    suspected_error: bool
    duplicate_group: int | None


class GalleryPage(Shape):
    items: list[GalleryItem]
    next_cursor: str | None = Field(description="Pass as ?after= for the next page; null "
                                                "on the last page.")
    total: Count


class Annotation(Shape):
    annotation_id: int
    image_id: int
    label: str
    annotator: str | None
    created_at: Timestamp
    undone_at: Timestamp | None


class Skipped(Shape):
    skipped: Literal[True]


class BulkLabelled(Shape):
    image_id: int
    label: str
    label_colour: str


class BulkLabelResult(Shape):
    updated: Count
    items: list[BulkLabelled]


JobState = Literal["queued", "running", "succeeded", "failed"]


class Job(Shape):
    job_id: int
    kind: str = Field(description="e.g. 'embed' or 'retrain'.")
    project_id: int | None
    status: JobState
    progress: Fraction | None
    message: str | None
    created_at: Timestamp | None
    finished_at: Timestamp | None


class QueuedJob(Shape):
    job_id: int
    status: JobState


class Round(Shape):
    """One retrain round and its cross-validated metrics."""

    number: int
    status: Literal["queued", "running", "succeeded", "failed", "skipped"] = Field(
        description="'skipped': too few labels to train; the round only ranked the pool "
                    "for a cold start.")
    strategy: str | None
    n_labels: int | None
    accuracy: float | None
    macro_f1: float | None
    per_class: Any = Field(description="Per-class metrics of the round, when measured.")
    labels: Any = Field(description="Class names in the order of the confusion matrix.")
    confusion: Any = Field(description="Confusion matrix (rows: true, columns: predicted).")
    calibration: Calibration | None = Field(
        description="Calibration of the round's confidences; null before it is measured.")
    label_quality: LabelQuality | None = Field(
        description="cleanlab's per-class label quality, from the round's cross-validated "
                    "probabilities; null before it is measured.")
    duration_s: float | None
    message: str | None
    created_at: Timestamp | None


class StatsCounts(Counts):
    """The project's counts plus embedded images."""

    embedded: Count


class Stats(Shape):
    counts: StatsCounts
    labels_until_next_round: int | None
    active_round: Round | None
    rounds: list[Round]


class Strategy(Shape):
    name: str
    help: str


class Settings(Shape):
    strategy: str
    retrain_every: int
    strategies: list[Strategy]


class DashboardProject(Shape):
    id: int
    name: str


class Totals(Shape):
    images: Count
    labelled: Count
    unlabelled: Count
    embedded: Count


class ClassCount(Shape):
    name: str
    colour: str
    labelled: Count
    predicted: Count


class CurvePoint(Shape):
    round: int
    n_labels: int | None
    accuracy: float
    macro_f1: float | None
    strategy: str | None


class AnnotatorReport(Shape):
    """Labels kept, and (over the last 7 days) active time from the labels' timestamps."""

    username: str
    labels: Count
    last_hour: Count
    recent_labels: Count
    per_hour: float | None
    active_seconds: float | None
    active_minutes: float | None
    last_label_at: Timestamp | None


class Dashboard(Shape):
    project: DashboardProject
    totals: Totals
    classes: list[ClassCount]
    curve: list[CurvePoint]
    outlook: Outlook | None
    finetune: FineTune | None
    latest_round: Round | None
    last_round: Round | None
    labels_until_next_round: int | None
    settings: Settings
    annotators: list[AnnotatorReport]
    jobs: list[Job]
    any_job_active: bool


class MapClass(Shape):
    id: int
    name: str
    colour: str
    archived: bool


class MapPoints(Shape):
    """Parallel columns, one entry per embedded image."""

    image_id: list[int]
    x: list[float]
    y: list[float]
    label: list[int] = Field(description="Label class id, -1 when unlabelled.")
    predicted: list[int] = Field(description="Predicted class id, -1 when none.")


class Map(Shape):
    method: Literal["pca", "tsne"] = Field(description="The layout these points are in.")
    tsne: Literal["ready", "computing", "failed", "unavailable"] = Field(
        description="The t-SNE layout: ready, being computed (PCA meanwhile), failed (see "
                    "tsne_message), or unavailable (too few images).")
    tsne_message: str
    explained_variance: list[float]
    classes: list[MapClass]
    images: Count
    empty: bool
    message: str
    points: MapPoints


class Rejected(Shape):
    name: str
    reason: str


class UploadReport(Shape):
    imported: Count
    duplicates: Count
    labelled: Count
    image_ids: list[int]
    rejected: list[Rejected]
