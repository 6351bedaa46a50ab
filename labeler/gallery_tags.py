"""The gallery's tag filters in multi-label projects, and changing tags for a selection.

An image's tags are its ImageTag rows (the current tag set; ``tagged_at`` NULL means not
labelled); what the model predicts is ImageTagScore: tag X is predicted when its
probability reaches X's threshold in the latest round (``metrics["thresholds"]``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, exists, select

from .errors import Conflict, LabelerError, NotFound
from .extensions import db
from .models import Image, ImageTag, ImageTagScore, LabelClass, Project, User
from .projects import selected_images
from .queue import tag_images
from .rounds import latest_round

#: What "Tag is" can ask of the chosen tag.
TAG_STATES = ("has", "not_has", "predicted", "not_predicted")
#: A tag without a threshold in the round (an older round, a new tag): the usual cut.
DEFAULT_THRESHOLD = 0.5


class TagFilterError(LabelerError):
    """A tag filter value that cannot be used (the message says what to change)."""


class TagFilterNeedsTag(TagFilterError, Conflict):
    """A 'tag is' state or probability range with no tag chosen to apply it to."""


class TagNotFound(TagFilterError, NotFound):
    """A filter or a bulk change names a tag the project does not have."""


@dataclass(frozen=True)
class TagFilters:
    """The gallery's tag filters, as given in the query string (all optional)."""

    tag: str = ""
    tag_state: str = ""  # one of TAG_STATES
    min_probability: float | None = None
    max_probability: float | None = None


def _probability(args: Any, name: str) -> float | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    words = name.replace("_", " ")
    try:
        value = float(raw)
    except ValueError:
        raise TagFilterError(f"The {words} must be a number from 0 to 1, not {raw!r}.") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise TagFilterError(f"The {words} must be from 0 to 1; {raw} is outside that range.")
    return value


def parse_tag_filters(args: Any) -> TagFilters:
    """Read ``tag``, ``tag_state``, ``min_probability`` and ``max_probability``.

    Raises:
        TagFilterError: a malformed value, or a state or range without a tag to apply to.
    """
    tag = (args.get("tag") or "").strip()
    state = (args.get("tag_state") or "").strip()
    if state and state not in TAG_STATES:
        raise TagFilterError(f"Tag state must be one of {', '.join(TAG_STATES)}, "
                             f"not {state!r}.")
    low, high = _probability(args, "min_probability"), _probability(args, "max_probability")
    if (state or low is not None or high is not None) and not tag:
        raise TagFilterNeedsTag("Choose a tag for the 'tag is' and probability filters to "
                             "apply to.")
    return TagFilters(tag=tag, tag_state=state, min_probability=low, max_probability=high)


def tag_named(project: Project, name: str) -> LabelClass:
    """The project's tag ``name``; NotFound names the tags it has."""
    for label_class in project.classes:
        if label_class.name == name:
            return label_class
    known = ", ".join(c.name for c in project.classes) or "none yet"
    raise TagNotFound(f"Project {project.name!r} has no tag {name!r} (tags: {known}).")



def thresholds(project: Project) -> dict[str, float]:
    """Each tag's decision threshold in the latest trained round ({} before one)."""
    active = latest_round(project)
    found = ((active.metrics or {}).get("thresholds") or {}) if active is not None else {}
    return {name: float(t) for name, t in found.items() if isinstance(t, int | float)}


def apply_tag_filters(query: Select[Any], project: Project, filters: TagFilters,
                      label: str) -> Select[Any]:
    """Narrow ``SELECT image.id`` by the tag filters and by ``label``: "labelled",
    "unlabelled", or a tag's name (images tagged with it, as ``tag_state=has``)."""
    if label == "labelled":
        query = query.where(Image.tagged_at.is_not(None))
    elif label == "unlabelled":
        query = query.where(Image.tagged_at.is_(None))
    elif label:  # a tag's name: images whose current tags include it
        query = query.where(exists().where(ImageTag.image_id == Image.id,
                                           ImageTag.label_class_id
                                           == tag_named(project, label).id))
    if not filters.tag:
        return query
    tag = tag_named(project, filters.tag)
    has_tag = exists().where(ImageTag.image_id == Image.id, ImageTag.label_class_id == tag.id)
    score = ImageTagScore.__table__.alias("tag_score")
    scored = [score.c.image_id == Image.id, score.c.label_class_id == tag.id]
    cut = thresholds(project).get(tag.name, DEFAULT_THRESHOLD)
    if filters.tag_state == "has":
        query = query.where(has_tag)
    elif filters.tag_state == "not_has":
        query = query.where(Image.tagged_at.is_not(None), ~has_tag)
    elif filters.tag_state == "predicted":
        query = query.where(exists().where(*scored, score.c.probability >= cut))
    elif filters.tag_state == "not_predicted":
        query = query.where(exists().where(*scored, score.c.probability < cut))
    bounds = []
    if filters.min_probability is not None:
        bounds.append(score.c.probability >= filters.min_probability)
    if filters.max_probability is not None:
        bounds.append(score.c.probability <= filters.max_probability)
    if bounds:
        query = query.where(exists().where(and_(*scored, *bounds)))
    return query


def new_tag_sets(project: Project, images: list[Image], *, add: list[str],
                 remove: list[str], confirm: bool) -> list[list[LabelClass]]:
    """The tag set each image gets from a bulk change, in the order of ``images``.

    Adding and removing start from each image's tags as the gallery shows them: its
    labelled set, or the model's predicted tags if it is not labelled yet. ``confirm``
    takes the predicted tags as they are.

    Raises:
        TagNotFound: a tag the project does not have.
        Conflict: ``confirm`` for images without predicted tags (no round scored them).
    """
    by_id = {c.id: c for c in project.classes}
    adding = [tag_named(project, name) for name in add]
    removing = {tag_named(project, name).id for name in remove}
    ids = [image.id for image in images]
    current: dict[int, set[int]] = {i: set() for i in ids}
    for image_id, class_id in db.session.execute(
            select(ImageTag.image_id, ImageTag.label_class_id).where(ImageTag.image_id.in_(ids))):
        current[image_id].add(class_id)
    cuts = thresholds(project)
    predicted: dict[int, set[int]] = {}
    for image_id, class_id, probability in db.session.execute(
            select(ImageTagScore.image_id, ImageTagScore.label_class_id,
                   ImageTagScore.probability).where(ImageTagScore.image_id.in_(ids))):
        tags = predicted.setdefault(image_id, set())
        name = by_id[class_id].name if class_id in by_id else ""
        if probability >= cuts.get(name, DEFAULT_THRESHOLD):
            tags.add(class_id)
    if confirm:
        unscored = [i for i in ids if i not in predicted]
        if unscored:
            raise Conflict(f"{len(unscored)} of the selected images have no predicted tags "
                           "yet; deselect them or add tags instead. Nothing was labelled.")
    sets = []
    for image in images:
        if confirm:
            tags = predicted[image.id]
        else:
            base = current[image.id] if image.tagged_at is not None else predicted.get(
                image.id, set())
            tags = (base | {t.id for t in adding}) - removing
        sets.append([by_id[i] for i in sorted(tags, key=lambda i: by_id[i].position)])
    return sets


def bulk_tag(project: Project, image_ids: list[int], user: User, *, add: list[str],
             remove: list[str], confirm: bool) -> list[tuple[Image, list[LabelClass]]]:
    """Change the tags of many images at once, all or none (committed): one annotation
    per image (source "gallery") with its new full tag set. Returns (image, tags) in the
    order of ``image_ids``.

    Raises:
        Conflict: the project is single-label (bulk-label is its endpoint).
        NotFound: images or tags the project does not have (nothing was labelled).
        Conflict: ``confirm`` for images without predicted tags.
    """
    if not project.multi_label:
        raise Conflict(f"Project {project.name!r} gives each image one class; label a "
                       "selection with bulk-label and 'label' instead.")
    ordered = selected_images(project, image_ids)
    plan = list(zip(ordered, new_tag_sets(project, ordered, add=add, remove=remove,
                                          confirm=confirm), strict=True))
    tag_images(project, plan, user, source="gallery", respect_leases=False)
    return plan
