"""The gallery: filtered, keyset-paginated pages of images, and labelling many at once.

Called by the gallery page, the JSON API and the image page alike.

Pages are keyset-paginated (``WHERE id > :last`` or, ordered by confidence, a
``(confidence, id)`` keyset), never ``OFFSET``, so the millionth image costs what the first
does; the filters are answered by the indexes ``(project_id, predicted_class_id,
confidence)`` and ``(project_id, label_class_id)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from flask import url_for
from sqlalchemy import Select, and_, func, or_, select

from .config import is_truthy
from .errors import Conflict, LabelerError, NotFound
from .extensions import db
from .gallery_tags import TagFilterError, TagFilters, apply_tag_filters, parse_tag_filters
from .models import ID_MAX, Annotation, Image, LabelClass, Project, User
from .projects import require_active, selected_images
from .queue import label_images
from .tag_sets import tag_fields

PAGE_SIZE = 100
MAX_PAGE_SIZE = 200
MAX_BULK = 500
SORTS = ("id", "confidence")
# Images whose longer side is below this are enlarged on every page (a 28-pixel
# Fashion-MNIST image fills a 150-pixel tile): drawn pixel by pixel, not smoothed.
PIXELATED_BELOW_PX = 128


class GalleryFilterError(LabelerError):
    """A filter value in the query string that cannot be used (the message says why)."""


class GalleryFilterConflict(GalleryFilterError, Conflict):
    """A well-formed filter this project cannot apply: one for the other kind of project,
    or a tag filter with no tag chosen (the API's 409, since the query's schema allows it)."""


def _gallery_error(exc: LabelerError) -> GalleryFilterError:
    """A tag filter's error as the gallery's, keeping whether it is a conflict."""
    return (GalleryFilterConflict if isinstance(exc, Conflict) else GalleryFilterError)(str(exc))


class UnknownClass(GalleryFilterError, NotFound):
    """A filter or label names a class the project does not have."""




@dataclass(frozen=True)
class GalleryFilters:
    """What the gallery shows, as given in the query string (all optional)."""

    label: str = ""  # a class name, "labelled" or "unlabelled"
    predicted: str = ""  # a class name
    min_confidence: float | None = None
    max_confidence: float | None = None
    suspected: bool = False
    duplicate_group: str = ""  # a group number, or "any"
    sort: str = "id"  # "id" (import order) or "confidence" (least confident first)
    # Multi-label projects only (labeler.gallery_tags).
    tags: TagFilters = TagFilters()

    @property
    def tag(self) -> str:
        return self.tags.tag

    @property
    def tag_state(self) -> str:
        return self.tags.tag_state

    @property
    def min_probability(self) -> float | None:
        return self.tags.min_probability

    @property
    def max_probability(self) -> float | None:
        return self.tags.max_probability

    def query_args(self) -> dict[str, str]:
        """The non-default filters as query-string arguments (for links and cursors)."""
        args = {"label": self.label, "predicted": self.predicted,
                "min_confidence": _fmt(self.min_confidence),
                "max_confidence": _fmt(self.max_confidence),
                "suspected": "1" if self.suspected else "",
                "duplicate_group": self.duplicate_group,
                "sort": "" if self.sort == "id" else self.sort,
                "tag": self.tag, "tag_state": self.tag_state,
                "min_probability": _fmt(self.min_probability),
                "max_probability": _fmt(self.max_probability)}
        return {k: v for k, v in args.items() if v}

    @property
    def active(self) -> bool:
        """Whether any filter narrows the view (the sort order does not)."""
        return any(k != "sort" for k in self.query_args())


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _confidence(args: Any, name: str) -> float | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise GalleryFilterError(f"The {name.replace('_', ' ')} must be a number from 0 to 1, "
                                 f"not {raw!r}.") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise GalleryFilterError(f"The {name.replace('_', ' ')} must be from 0 to 1; "
                                 f"{raw} is outside that range.")
    return value


def parse_filters(args: Any) -> GalleryFilters:
    """Read the gallery's filters from a query string (``request.args``).

    Args:
        args: a mapping with ``get`` such as ``request.args``.

    Returns:
        The filters; empty arguments mean "no filter".

    Raises:
        GalleryFilterError: a value is malformed (the message names it).
    """
    # A minimum above the maximum is a filter nothing matches: an empty page, not an error
    # (the API's document cannot state the order of two parameters).
    low = _confidence(args, "min_confidence")
    high = _confidence(args, "max_confidence")
    group = (args.get("duplicate_group") or "").strip().lower()
    if group and group != "any" and not _is_id(group):
        raise GalleryFilterError("The duplicate group must be a group number or 'any'.")
    sort = (args.get("sort") or "id").strip()
    if sort not in SORTS:
        raise GalleryFilterError(f"Sort must be one of {', '.join(SORTS)}, not {sort!r}.")
    suspected = is_truthy(args.get("suspected"))
    try:
        tags = parse_tag_filters(args)
    except TagFilterError as exc:
        raise _gallery_error(exc) from None
    return GalleryFilters(tags=tags, label=(args.get("label") or "").strip(),
                          predicted=(args.get("predicted") or "").strip(),
                          min_confidence=low, max_confidence=high, suspected=suspected,
                          duplicate_group=group, sort=sort)


def _class_named(project: Project, name: str, what: str) -> LabelClass:
    for label_class in project.classes:
        if label_class.name == name:
            return label_class
    known = ", ".join(c.name for c in project.classes) or "none yet"
    raise UnknownClass(f"The {what} filter names a class {name!r} that this project "
                       f"does not have (classes: {known}).")


def filtered_select(project: Project, filters: GalleryFilters) -> Select[Any]:
    """``SELECT image.id`` narrowed by ``filters`` (no order, no keyset, no limit)."""
    query = select(Image.id).where(Image.project_id == project.id)
    if project.multi_label:
        if filters.predicted:
            raise GalleryFilterConflict("In a multi-label project, filter by a tag and "
                                     "'tag_state=predicted' instead of 'predicted'.")
        query = _tag_filtered(query, project, filters)
    elif filters.tag:
        raise GalleryFilterConflict("Tag filters are for multi-label projects; filter this "
                                 "project with 'label' and 'predicted'.")
    elif filters.label == "unlabelled":
        query = query.where(Image.unlabelled)
    elif filters.label == "labelled":
        query = query.where(Image.labelled)
    elif filters.label:
        query = query.where(
            Image.label_class_id == _class_named(project, filters.label, "label").id)
    if filters.predicted:
        query = query.where(Image.predicted_class_id
                            == _class_named(project, filters.predicted, "predicted").id)
    if filters.min_confidence is not None:
        query = query.where(Image.confidence >= filters.min_confidence)
    if filters.max_confidence is not None:
        query = query.where(Image.confidence <= filters.max_confidence)
    if filters.suspected:
        query = query.where(Image.suspected_error.is_(True))
    if filters.duplicate_group == "any":
        query = query.where(Image.duplicate_group.is_not(None))
    elif filters.duplicate_group:
        query = query.where(Image.duplicate_group == int(filters.duplicate_group))
    return query


def _tag_filtered(query: Select[Any], project: Project, filters: GalleryFilters) -> Select[Any]:
    """The multi-label part of ``filtered_select``: labelled/unlabelled and the tag filters."""
    try:
        return apply_tag_filters(query, project, filters.tags, filters.label)
    except NotFound as exc:
        raise UnknownClass(str(exc)) from None
    except TagFilterError as exc:
        raise _gallery_error(exc) from None


def _is_id(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes '²'), at most 9 (an ``integer`` column)."""
    return text.isascii() and text.isdigit() and len(text) <= 9


def _cursor_id(text: str) -> int:
    """The image id of a cursor; one beyond every id stays one (an empty page follows)."""
    if not (text.isascii() and text.isdigit()):
        raise GalleryFilterError("The 'after' cursor is not one this server made; "
                                 "start again from the first page.")
    return min(int(text), ID_MAX)


def _keyset(query: Select[Any], sort: str, after: str) -> Select[Any]:
    """Order ``query`` and start it after the cursor ``after`` (see ``_cursor``).

    Either sort takes either form of cursor (a cursor is the last image seen): an id
    cursor when sorting by confidence means "images without a prediction after it".
    """
    if sort == "id":
        if after:
            query = query.where(Image.id > _cursor_id(after.rpartition(":")[2]))
        return query.order_by(Image.id)
    # Least confident first, images without a prediction last; ties broken by id.
    if after:
        value, _, last_id = after.rpartition(":")
        value = value or "none"
        if not (last_id.isascii() and last_id.isdigit()):
            raise GalleryFilterError("The 'after' cursor is not one this server made; "
                                     "start again from the first page.")
        if value == "none":
            query = query.where(Image.confidence.is_(None), Image.id > _cursor_id(last_id))
        else:
            try:
                conf = float(value)
            except ValueError:
                raise GalleryFilterError("The 'after' cursor is not one this server made; "
                                         "start again from the first page.") from None
            query = query.where(or_(Image.confidence > conf,
                                    and_(Image.confidence == conf,
                                         Image.id > _cursor_id(last_id)),
                                    Image.confidence.is_(None)))
    return query.order_by(Image.confidence.is_(None), Image.confidence, Image.id)


def _cursor(sort: str, image: Image) -> str:
    if sort == "id":
        return str(image.id)
    # repr() round-trips a float exactly, so equal confidences compare equal again.
    value = "none" if image.confidence is None else repr(image.confidence)
    return f"{value}:{image.id}"


@dataclass
class GalleryPage:
    """One page of the gallery: its items, the cursor of the next page, and the total."""

    items: list[dict[str, Any]]
    next_cursor: str | None
    total: int


def pixelated(image: Image) -> bool:
    """Whether pages should draw ``image`` with crisp pixels (it is smaller than its box)."""
    return max(image.width or 0, image.height or 0) < PIXELATED_BELOW_PX


def gallery_item(image: Image, classes: dict[int, LabelClass]) -> dict[str, Any]:
    """The JSON shape of one gallery tile (also what the template renders)."""
    label = classes.get(image.label_class_id) if image.label_class_id else None
    predicted = classes.get(image.predicted_class_id) if image.predicted_class_id else None
    return {
        "image_id": image.id,
        "thumbnail_url": url_for("images.thumbnail", image_id=image.id),
        "detail_url": url_for("gallery.image_detail", project_id=image.project_id,
                              image_id=image.id),
        "original_name": image.original_name,
        "width": image.width,
        "height": image.height,
        "pixelated": pixelated(image),
        "label": label.name if label else None,
        "label_colour": label.colour if label else None,
        "predicted": predicted.name if predicted else None,
        "predicted_colour": predicted.colour if predicted else None,
        "confidence": image.confidence,
        "suspected_error": bool(image.suspected_error),
        "duplicate_group": image.duplicate_group,
    }


def gallery_page(project: Project, filters: GalleryFilters, after: str = "",
                 limit: int = PAGE_SIZE) -> GalleryPage:
    """The page of images matching ``filters`` that follows the cursor ``after``.

    Args:
        project: whose images.
        filters: from ``parse_filters``.
        after: the ``next_cursor`` of the previous page, or "" for the first page.
        limit: images per page.

    Raises:
        GalleryFilterError: a filter or the cursor cannot be used.
    """
    base = filtered_select(project, filters)
    total = db.session.scalar(select(func.count()).select_from(base.subquery())) or 0
    ids_query = _keyset(base, filters.sort, after).limit(limit + 1)
    ids = list(db.session.scalars(ids_query))
    more = len(ids) > limit
    ids = ids[:limit]
    by_id = {image.id: image for image in db.session.scalars(
        select(Image).where(Image.id.in_(ids)))} if ids else {}
    images = [by_id[i] for i in ids]
    classes = {c.id: c for c in project.classes}
    items = [gallery_item(image, classes) for image in images]
    if project.multi_label:
        tags = tag_fields(project, images)
        for item in items:
            item.update(tags[item["image_id"]])
    return GalleryPage(items=items,
                       next_cursor=_cursor(filters.sort, images[-1]) if more else None,
                       total=total)


def has_images(project: Project) -> bool:
    """Whether the project has any image at all (an empty gallery says how to add some)."""
    return db.session.scalar(
        select(Image.id).where(Image.project_id == project.id).limit(1)) is not None


def newest_images(project: Project, limit: int) -> list[Image]:
    """The project's most recently imported images, newest first."""
    return list(db.session.scalars(select(Image).where(Image.project_id == project.id)
                                   .order_by(Image.id.desc()).limit(limit)))


def image_of(project: Project, image_id: int) -> Image:
    """Image ``image_id`` of ``project``; NotFound if the project has no such image."""
    image = db.session.get(Image, image_id)
    if image is None or image.project_id != project.id:
        raise NotFound(f"Image {image_id} is not in project {project.name!r}.")
    return image


def label_history(image: Image) -> list[Annotation]:
    """Every label the image was given, newest first (undone ones included)."""
    return list(db.session.scalars(
        select(Annotation).where(Annotation.image_id == image.id)
        .order_by(Annotation.created_at.desc(), Annotation.id.desc())))


def bulk_label(project: Project, image_ids: list[int], user: User, *,
               label: str | None = None) -> list[tuple[Image, LabelClass]]:
    """Label many images at once, all or none: with class ``label``, or (None) each with
    its predicted class. Returns (image, class) in the order of ``image_ids``.

    Raises:
        NotFound: some images are not in the project (nothing was labelled).
        LabelerError: an unknown or archived class, or an image with no prediction.
    """
    images = {image.id: image for image in selected_images(project, image_ids)}
    if label is not None:
        try:
            target = _class_named(project, label, "label")
        except GalleryFilterError:
            known = ", ".join(c.name for c in project.active_classes()) or "none yet"
            raise NotFound(f"Project {project.name!r} has no class {label!r} "
                           f"(classes: {known}).") from None
        plan = [(images[i], target) for i in image_ids]
    else:
        classes = {c.id: c for c in project.classes}
        unpredicted = [i for i in image_ids if images[i].predicted_class_id not in classes]
        if unpredicted:
            raise Conflict(f"{len(unpredicted)} of the selected images have no prediction "
                           "yet; deselect them or use 'Set label'. Nothing was labelled.")
        plan = [(images[i], classes[images[i].predicted_class_id]) for i in image_ids]
        require_active((c for _, c in plan), "set the label of those images instead")
    label_images(project, plan, user, source="gallery", respect_leases=False)
    return plan
