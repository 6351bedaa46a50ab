"""Exports of multi-label projects: CSV with ``;``-joined tags, JSON Lines with lists.

Like ``labeler.export``, every export reads with ONE streamed SELECT (one snapshot while
annotators keep labelling): the image, its current annotation, and its tag ids and per-tag
probabilities aggregated into text by the database (``group_concat`` on SQLite,
``string_agg`` on PostgreSQL), turned back into names here. Columns: ``labels`` (the tags
joined by ``;``, empty for the empty set) and, with predictions, ``predicted_labels`` (the
tags over the round's thresholds) and one ``p_<tag>`` probability column per tag.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from .extensions import db
from .models import Annotation, Image, ImageTag, ImageTagScore, Project, User, rfc3339
from .tag_sets import round_thresholds

TAG_SEPARATOR = ";"
COLUMNS = ("image_id", "file_name", "sha256", "labels", "annotator", "labelled_at")
BATCH_ROWS = 1000
_UNSAFE_COLUMN = re.compile(r"[^0-9A-Za-z_]+")


@dataclass(frozen=True)
class TagRow:
    """One image of a multi-label project as exported."""

    image_id: int
    file_name: str
    sha256: str
    labels: list[str] | None  # None: not labelled; [] the explicit empty set
    annotator: str | None
    labelled_at: datetime | None
    probabilities: dict[str, float]  # tag name -> probability (empty before a round)


def _aggregate(column: Any) -> ColumnElement[str]:
    """The column's values of a group joined by ','; NULL for an empty group."""
    if db.engine.dialect.name == "postgresql":
        return func.string_agg(cast(column, String), ",")
    return func.group_concat(column, ",")


def _statement(project: Project, *, labelled_only: bool) -> Any:
    current = (
        select(Annotation.id)
        .where(Annotation.image_id == Image.id, Annotation.undone_at.is_(None))
        .order_by(Annotation.created_at.desc(), Annotation.id.desc())
        .limit(1).correlate(Image).scalar_subquery())
    tags = (select(_aggregate(ImageTag.label_class_id))
            .where(ImageTag.image_id == Image.id).correlate(Image).scalar_subquery())
    scores = (select(_aggregate(cast(ImageTagScore.label_class_id, String) + ":"
                                + cast(ImageTagScore.probability, String)))
              .where(ImageTagScore.image_id == Image.id).correlate(Image).scalar_subquery())
    statement = (
        select(Image.id, Image.original_name, Image.sha256, Image.tagged_at, tags,
               User.username, Annotation.created_at, scores)
        .select_from(Image)
        .outerjoin(Annotation, Annotation.id == current)
        .outerjoin(User, User.id == Annotation.annotator_id)
        .where(Image.project_id == project.id))
    if labelled_only:
        statement = statement.where(Image.tagged_at.is_not(None))
    return statement.order_by(Image.id)


def iter_tag_rows(project: Project, *, include_unlabelled: bool = False) -> Iterator[TagRow]:
    """Stream the project's images as export rows from one database snapshot."""
    names = {c.id: c.name for c in project.classes}
    order = {c.id: c.position for c in project.classes}
    statement = _statement(project, labelled_only=not include_unlabelled)
    result = db.session.execute(statement.execution_options(yield_per=BATCH_ROWS))
    try:
        for image_id, name, sha256, tagged_at, tag_ids, annotator, at, scores in result:
            ids = sorted((int(t) for t in tag_ids.split(",")), key=order.get) if tag_ids else []
            probabilities = {}
            for pair in scores.split(",") if scores else ():
                class_id, probability = pair.split(":", 1)
                probabilities[int(class_id)] = float(probability)
            yield TagRow(
                image_id, name, sha256,
                [names[t] for t in ids] if tagged_at is not None else None,
                annotator if tagged_at is not None else None,
                at if tagged_at is not None else None,
                {names[t]: probabilities[t] for t in sorted(probabilities, key=order.get)})
    finally:
        result.close()  # ends the snapshot even when the consumer stops early


def probability_columns(project: Project) -> dict[str, str]:
    """Tag name → its CSV probability column: ``p_`` + the name in letters, digits and
    ``_`` (a spreadsheet formula cannot start it), made unique with the tag's id."""
    columns: dict[str, str] = {}
    used = set(COLUMNS) | {"predicted_labels"}
    for tag in project.classes:
        column = "p_" + (_UNSAFE_COLUMN.sub("_", tag.name).strip("_")[:60] or str(tag.id))
        if column.lower() in used:
            column = f"{column}_{tag.id}"
        used.add(column.lower())
        columns[tag.name] = column
    return columns


def _predicted(row: TagRow, thresholds: dict[str, float]) -> list[str]:
    return [name for name, p in row.probabilities.items()
            if name in thresholds and p >= thresholds[name]]


def iter_tag_csv(project: Project, *, include_predictions: bool = False) -> Iterator[str]:
    """Stream the CSV export: a header, then one row per labelled image (every image with
    ``include_predictions``); ``labels`` is empty for the empty set and for an unlabelled
    image, which ``labelled_at`` tells apart."""
    probability = probability_columns(project) if include_predictions else {}
    thresholds = round_thresholds(project) if include_predictions else {}
    header = list(COLUMNS) + (["predicted_labels", *probability.values()]
                              if include_predictions else [])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for count, row in enumerate(iter_tag_rows(project, include_unlabelled=include_predictions),
                                1):
        cells: list[Any] = [row.image_id, row.file_name, row.sha256,
                            TAG_SEPARATOR.join(row.labels or []), row.annotator or "",
                            rfc3339(row.labelled_at) or ""]
        if include_predictions:
            cells.append(TAG_SEPARATOR.join(_predicted(row, thresholds)))
            cells.extend(row.probabilities.get(name, "") for name in probability)
        writer.writerow(cells)
        if count % BATCH_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def iter_tag_jsonl(project: Project, *, include_predictions: bool = False) -> Iterator[str]:
    """Stream the JSON Lines export: ``labels`` a list (null when not labelled) and, with
    predictions, ``predicted_labels`` and ``tag_probabilities`` (tag name → probability)."""
    thresholds = round_thresholds(project) if include_predictions else {}
    lines: list[str] = []
    for row in iter_tag_rows(project, include_unlabelled=include_predictions):
        data: dict[str, Any] = {
            "image_id": row.image_id, "file_name": row.file_name, "sha256": row.sha256,
            "labels": row.labels, "annotator": row.annotator,
            "labelled_at": rfc3339(row.labelled_at)}
        if include_predictions:
            data["predicted_labels"] = _predicted(row, thresholds)
            data["tag_probabilities"] = row.probabilities
        lines.append(json.dumps(data, ensure_ascii=False) + "\n")
        if len(lines) == BATCH_ROWS:
            yield "".join(lines)
            lines.clear()
    yield "".join(lines)
