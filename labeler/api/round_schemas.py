"""Response shapes of what a round measured: calibration, label quality, the stopping
hint and the last fine-tune (split from ``schemas`` to keep each module short)."""
from __future__ import annotations

from pydantic import Field

from .schemas_base import Count, Shape, Timestamp


class ClassLabelQuality(Shape):
    quality: float
    label_issues: Count
    given: Count
    label_noise: float
    inverse_label_noise: float


class LabelQuality(Shape):
    overall: float = Field(description="cleanlab's overall label health score: the estimated "
                                       "share of correct labels.")
    per_class: dict[str, ClassLabelQuality]


class ReliabilityBin(Shape):
    """Out-of-fold predictions whose confidence fell in [low, high)."""

    low: float
    high: float
    confidence: float
    accuracy: float
    count: Count


class Calibration(Shape):
    """Out-of-fold calibration: expected calibration error and the reliability curve,
    before and after the temperature."""

    temperature: float = Field(description="Divides the head's logits.")
    n: Count
    ece_raw: float
    ece: float
    bins_raw: list[ReliabilityBin]
    bins: list[ReliabilityBin]


class Outlook(Shape):
    """Auto-tag accuracy with its 95 % interval, and the accuracy the next 100 labels are
    expected to add (inverse power law over the rounds)."""

    accuracy: float
    low: float
    high: float
    n: Count
    n_labels: Count
    gain_next_100: float | None
    plateau: float | None
    rounds: Count
    note: str


class FineTune(Shape):
    """The last fine-tune: both held-out accuracies and the verdict."""

    at: Timestamp
    n_labels: Count
    frozen_accuracy: float
    finetuned_accuracy: float
    adopted: bool
    pending: bool = Field(description="Adopted, and the pool is still being embedded with it.")
    reason: str
