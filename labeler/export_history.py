"""The JSON Lines export with each image's whole labelling history (``--history``).

Each line is the image's usual JSON Lines row (``labeler.export``) plus ``history``: every
annotation of the image, oldest first, with who gave it, when, from where (``source``:
manual, gallery, folder, import, review), whether and when it was undone and by whom,
and for a review the annotation it accepted or corrected (``reviews``). Nothing
is left out: undone labels and relabellings are part of the record.

Like every export, it is ONE streamed SELECT (the rows of ``labeler.export`` joined with
all of each image's annotations, ordered by image), so the history and the current label
come from the same snapshot while annotators keep labelling.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import fields
from itertools import groupby
from pathlib import Path
from typing import Any

from sqlalchemy.orm import aliased

from .export import BATCH_ROWS, ExportRow, Thresholds, atomic_text, keeps, rows_statement
from .extensions import db
from .models import Annotation, Image, LabelClass, Project, User, rfc3339

#: The leading columns of each result row that make the image's ExportRow.
ROW_FIELDS = len(fields(ExportRow))


def _statement(project: Project, include_predictions: bool) -> Any:
    act = aliased(Annotation)
    act_class = aliased(LabelClass)
    by = aliased(User)
    undoer = aliased(User)
    return (rows_statement(project, labelled_only=not include_predictions,
                           order_by_label=False)
            .add_columns(act.id, act_class.name, by.username, act.source, act.created_at,
                         act.undone_at, undoer.username, act.reviews_id)
            .outerjoin(act, act.image_id == Image.id)
            .outerjoin(act_class, act_class.id == act.label_class_id)
            .outerjoin(by, by.id == act.annotator_id)
            .outerjoin(undoer, undoer.id == act.undone_by_id)
            .order_by(act.created_at, act.id))


def _act(values: tuple[Any, ...]) -> dict[str, Any]:
    annotation_id, label, annotator, source, at, undone_at, undone_by, reviews = values
    return {"annotation_id": annotation_id, "label": label, "annotator": annotator,
            "source": source, "at": rfc3339(at), "undone": undone_at is not None,
            "undone_at": rfc3339(undone_at), "undone_by": undone_by, "reviews": reviews}


def iter_jsonl_with_history(project: Project, *, include_predictions: bool = False,
                            thresholds: Thresholds | None = None) -> Iterator[str]:
    """Stream the JSON Lines export, each line with the image's ``history``.

    Args:
        project: the project to export.
        include_predictions: add ``predicted`` and ``confidence`` and the unlabelled images.
        thresholds: as in ``labeler.export.iter_csv``.

    Yields:
        Chunks of text, each holding whole lines.
    """
    result = db.session.execute(_statement(project, include_predictions)
                                .execution_options(yield_per=BATCH_ROWS))
    lines: list[str] = []
    try:
        for _, group in groupby(result, key=lambda values: values[0]):
            rows = list(group)
            row = ExportRow(*rows[0][:ROW_FIELDS])
            if not keeps(row, thresholds):
                continue
            history = [_act(values[ROW_FIELDS:]) for values in rows
                       if values[ROW_FIELDS] is not None]
            lines.append(json.dumps({**row.as_dict(include_predictions), "history": history},
                                    ensure_ascii=False) + "\n")
            if len(lines) == BATCH_ROWS:
                yield "".join(lines)
                lines.clear()
    finally:
        result.close()  # ends the snapshot even when the consumer stops early
    yield "".join(lines)


def write_jsonl_with_history(project: Project, out: Path, *,
                             include_predictions: bool = False,
                             thresholds: Thresholds | None = None) -> Path:
    """Write the history export to ``out`` (never half-written under that name)."""
    return atomic_text(out, iter_jsonl_with_history(
        project, include_predictions=include_predictions, thresholds=thresholds))
