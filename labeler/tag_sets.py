"""What multi-label projects show of an image: its tag set, predicted tags, probabilities.

Reading side of tag sets (``annotations`` records them, ``queue`` takes them from
annotators): the names of the tags a request sends, and for a batch of images the fields
the API and pages add in a multi-label project, in three queries whatever the batch size.
A tag is *predicted* when the last round's probability reaches that round's threshold
for the tag (``model_round.metrics["thresholds"]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select

from .annotations import annotation_tag_ids, image_tag_ids
from .extensions import db
from .models import Annotation, Image, ImageTagScore, LabelClass, Project
from .projects import class_by_name
from .rounds import latest_round


def tags_named(project: Project, names: Iterable[str]) -> list[LabelClass]:
    """The project's tags called ``names`` (repeats dropped, in the order given).

    Raises:
        NotFound: the project has no tag of one of the names (the sentence lists them).
    """
    return [class_by_name(project, name) for name in dict.fromkeys(names)]


def annotation_tag_names(annotation: Annotation) -> list[str]:
    """The tags a multi-label annotation affirmed, in the project's display order."""
    tagged = set(annotation_tag_ids([annotation.id])[annotation.id])
    classes = db.session.scalars(select(LabelClass).where(
        LabelClass.project_id == annotation.project_id).order_by(LabelClass.position))
    return [c.name for c in classes if c.id in tagged]


def round_thresholds(project: Project) -> dict[str, float]:
    """Tag name → decision threshold of the round in use ({} before the first round)."""
    active = latest_round(project)
    thresholds = ((active.metrics or {}).get("thresholds") or {}) if active else {}
    return {str(name): float(value) for name, value in thresholds.items()
            if isinstance(value, int | float)}


def tag_scores(image_ids: Sequence[int]) -> dict[int, dict[int, float]]:
    """Image id → {tag id: probability} of the last round (one query)."""
    scores: dict[int, dict[int, float]] = {image_id: {} for image_id in image_ids}
    if image_ids:
        for image_id, class_id, probability in db.session.execute(
                select(ImageTagScore.image_id, ImageTagScore.label_class_id,
                       ImageTagScore.probability)
                .where(ImageTagScore.image_id.in_(list(image_ids)))):
            scores[image_id][class_id] = float(probability)
    return scores


def tag_fields(project: Project, images: Sequence[Image]) -> dict[int, dict[str, Any]]:
    """Image id → ``labels`` (names, or None when not labelled), ``predicted_labels`` and
    ``tag_probabilities`` (tag name → probability; {} before the first round)."""
    ids = [image.id for image in images]
    tags = project.classes  # in display order
    names = {tag.id: tag.name for tag in tags}
    current = image_tag_ids(ids)
    scores = tag_scores(ids)
    thresholds = round_thresholds(project)
    fields: dict[int, dict[str, Any]] = {}
    for image in images:
        probabilities = {names[t]: p for t, p in scores[image.id].items() if t in names}
        tagged = set(current.get(image.id, ()))
        fields[image.id] = {
            "labels": ([tag.name for tag in tags if tag.id in tagged]
                       if image.tagged_at is not None else None),
            "predicted_labels": [tag.name for tag in tags if not tag.archived
                                 and tag.name in probabilities and tag.name in thresholds
                                 and probabilities[tag.name] >= thresholds[tag.name]],
            "tag_probabilities": {tag.name: probabilities[tag.name] for tag in tags
                                  if tag.name in probabilities},
        }
    return fields
