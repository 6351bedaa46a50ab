"""Importing existing labels from a CSV file, matched to images by file name or SHA-256.

The CSV needs a ``label`` column and a ``sha256`` or file-name column (``file_name``, as the
CSV export writes it, or ``filename``, ``file``, ``name``, ``original_name``, ``image``), so
an export of one project imports into another holding the same images. A multi-label
project reads a ``labels`` column instead: the image's tags joined by ``;`` (an empty cell
is the empty set, unless a ``labelled_at`` column is empty too: an unlabelled image's row
in an export with predictions).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sqlalchemy import select

from .annotations import image_tag_ids, record_label, record_tags
from .errors import LabelerError
from .extensions import db
from .models import Image, LabelClass, Project, User
from .projects import ArchivedClass, add_class, clean_name, require_active

NAME_COLUMNS = ("file_name", "filename", "file", "name", "original_name", "image")
SHA_COLUMN = "sha256"
LABEL_COLUMN = "label"
TAGS_COLUMN = "labels"
LABELLED_AT_COLUMN = "labelled_at"
TAG_SEPARATOR = ";"
SHOWN = 20  # rows listed per problem in the report


@dataclass
class LabelImportReport:
    """What a labels import did, and the rows it could not use (line numbers from 1)."""

    rows: int = 0
    imported: int = 0
    unchanged: int = 0  # the image already had that label
    unmatched: list[tuple[int, str]] = field(default_factory=list)  # (line, name or sha)
    unknown_classes: dict[str, int] = field(default_factory=dict)  # name -> rows
    created_classes: list[str] = field(default_factory=list)
    bad_rows: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    @property
    def refused(self) -> bool:
        """True when unknown classes stopped the import (nothing was recorded)."""
        return bool(self.unknown_classes)  # with create_classes they are created instead

    def lines(self, shown: int = SHOWN) -> list[str]:
        """The report as lines for a terminal, listing the first ``shown`` of each problem."""
        out = [f"{self.rows} rows: {self.imported} labels imported, {self.unchanged} already "
               f"set, {len(self.unmatched)} matched no image, {len(self.bad_rows)} unusable."]
        if self.created_classes:
            out.append("Created classes: " + ", ".join(self.created_classes) + ".")
        if self.unknown_classes:
            out.append("Unknown classes: " + ", ".join(
                f"{name!r} ({n} rows)" for name, n in self.unknown_classes.items()) + ".")
        for title, items in (("Matched no image", self.unmatched),
                             ("Unusable rows", self.bad_rows)):
            if items:
                out.append(f"{title} (first {min(shown, len(items))} of {len(items)}):")
                out.extend(f"  line {line}: {text}" for line, text in items[:shown])
        return out


class _ImageIndex:
    """Image ids of a project by SHA-256, by original name and by the name's basename."""

    def __init__(self, project: Project) -> None:
        self.by_sha: dict[str, int] = {}
        self.by_name: dict[str, int | None] = {}  # None: several images share the name
        self.by_base: dict[str, int | None] = {}
        rows = db.session.execute(
            select(Image.id, Image.sha256, Image.original_name)
            .where(Image.project_id == project.id).execution_options(yield_per=5000))
        for image_id, sha256, name in rows:
            self.by_sha[sha256] = image_id
            for index, key in ((self.by_name, name), (self.by_base, _basename(name))):
                index[key] = image_id if key not in index else None

    def find(self, sha256: str, name: str) -> tuple[int | None, str | None]:
        """(image id, None) for a match, else (None, why not) — ambiguity is a reason."""
        if sha256:
            image_id = self.by_sha.get(sha256.lower())
            if image_id is not None or not name:
                return image_id, None
        for index in (self.by_name, self.by_base):
            key = name if index is self.by_name else _basename(name)
            if key in index:
                image_id = index[key]
                if image_id is None:
                    return None, (f"several images are named {key!r}; add a sha256 column to "
                                  "tell them apart")
                return image_id, None
        return None, None


def _basename(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).name


def _name_column(fieldnames: Iterable[str]) -> str | None:
    lowered = {name.strip().lower(): name for name in fieldnames}
    return next((lowered[c] for c in NAME_COLUMNS if c in lowered), None)


def import_labels(project: Project, source: Path | str | io.TextIOBase, *,
                  create_classes: bool = False, annotator: User | None = None,
                  source_name: str = "import") -> LabelImportReport:
    """Record the labels of a CSV file on the project's images (committed).

    Rows are matched to images by SHA-256 when the file has that column, else by the
    image's original name or its basename. Unknown class names are created when
    ``create_classes`` is set; otherwise they stop the whole import and nothing is recorded,
    so a typo never half-imports a file. Rows whose image already has that label are
    counted as unchanged, so importing the same file twice adds no history.

    Args:
        project: the project whose images get the labels.
        source: path of the CSV file, or an open text stream.
        create_classes: create classes the project does not have yet.
        annotator: who the labels are recorded for (None: no one, e.g. a file import).
        source_name: the annotations' ``source``.

    Returns:
        The report: rows imported, unchanged, unmatched, bad, unknown or created classes.

    Raises:
        LabelerError: the file cannot be read or has no label / name / sha256 column.
    """
    if isinstance(source, str | Path):
        try:
            with open(source, encoding="utf-8-sig", newline="") as handle:
                return import_labels(project, handle, create_classes=create_classes,
                                     annotator=annotator, source_name=source_name)
        except OSError as exc:
            raise LabelerError(f"Cannot read {source}: {exc.strerror or exc}.") from exc
    reader = csv.DictReader(source)
    try:
        header = list(reader.fieldnames or [])
    except (csv.Error, UnicodeDecodeError) as exc:
        raise LabelerError(f"The CSV file's header cannot be read: {exc}. Save it as UTF-8 "
                           "CSV and import again.") from exc
    fieldnames = [name.strip().lower() for name in header]
    name_column = _name_column(header)
    sha_column = next((n for n in header if n.strip().lower() == SHA_COLUMN), None)
    wanted = TAGS_COLUMN if project.multi_label else LABEL_COLUMN
    label_column = next((n for n in header if n.strip().lower() == wanted), None)
    if label_column is None or (name_column is None and sha_column is None):
        kind = (f"project {project.name!r} is multi-label: the CSV file needs a 'labels' "
                "column (each image's tags joined by ';')" if project.multi_label else
                "the CSV file needs a 'label' column")
        raise LabelerError(
            f"Cannot import: {kind} and a 'file_name' or 'sha256' column in its header "
            f"(found: {', '.join(fieldnames) or 'no header'}).")
    labelled_at = next((n for n in header if n.strip().lower() == LABELLED_AT_COLUMN), None)

    index = _ImageIndex(project)
    classes: dict[str, LabelClass] = {c.name: c for c in project.classes}
    report = LabelImportReport()
    try:
        for line, row in enumerate(reader, start=2):  # line 1 is the header
            report.rows += 1
            columns = _Columns(name_column, sha_column, label_column, labelled_at)
            _import_row(project, row, line, report, index, classes, columns,
                        create_classes, annotator, source_name)
    except (csv.Error, UnicodeDecodeError) as exc:
        db.session.rollback()
        raise LabelerError(f"The CSV file cannot be read near line {reader.line_num}: {exc}. "
                           "Save it as UTF-8 CSV and import again.") from exc
    if report.unknown_classes and not create_classes:
        db.session.rollback()  # all or nothing: a typo in a class name imports no row
        report.imported = report.unchanged = 0
        return report
    db.session.commit()
    return report


@dataclass(frozen=True)
class _Columns:
    """Which header cells hold the name, the SHA-256, the label(s) and the labelling time."""

    name: str | None
    sha: str | None
    label: str
    labelled_at: str | None


def _cell(row: dict[str, str | None], column: str | None) -> str:
    return (row.get(column) or "").strip() if column else ""


def _import_row(project: Project, row: dict[str, str | None], line: int,
                report: LabelImportReport, index: _ImageIndex, classes: dict[str, LabelClass],
                columns: _Columns, create_classes: bool, annotator: User | None,
                source_name: str) -> None:
    """Match one row and record its label (or tag set), or note in the report why not."""
    if None in row:  # DictReader puts the surplus cells of a too-long row under None
        report.bad_rows.append((line, "more cells than the header has columns"))
        return
    name, sha256 = _cell(row, columns.name), _cell(row, columns.sha)
    raw = row.get(columns.label) or ""
    if project.multi_label:
        if not raw.strip() and columns.labelled_at and not _cell(row, columns.labelled_at):
            report.bad_rows.append((line, "the image was not labelled (labelled_at is empty)"))
            return
        names = list(dict.fromkeys(
            " ".join(part.split()) for part in raw.split(TAG_SEPARATOR) if part.strip()))
    else:
        names = [" ".join(raw.split())]
        if not names[0]:
            # An unlabelled row (as an export with predictions has) carries no label.
            report.bad_rows.append((line, "the label is empty"))
            return
    if not name and not sha256:
        report.bad_rows.append((line, "neither a file name nor a sha256 is given"))
        return
    image_id, problem = index.find(sha256, name)
    if problem:
        report.bad_rows.append((line, problem))
        return
    if image_id is None:
        report.unmatched.append((line, name or sha256))
        return
    found = [_class_for(project, label, line, report, classes, create_classes)
             for label in names]
    if any(label_class is None for label_class in found):
        return
    chosen = [label_class for label_class in found if label_class is not None]
    try:
        require_active(chosen, "unarchive it to import labels into it")
    except ArchivedClass as exc:
        report.bad_rows.append((line, str(exc)))
        return
    image = db.session.get(Image, image_id)
    assert image is not None
    if project.multi_label:
        current = set(image_tag_ids([image.id]).get(image.id, ()))
        if image.tagged_at is not None and current == {c.id for c in chosen}:
            report.unchanged += 1
            return
        record_tags(image, chosen, annotator, source=source_name)
    else:
        if image.label_class_id == chosen[0].id:
            report.unchanged += 1
            return
        record_label(image, chosen[0], annotator, source=source_name)
    report.imported += 1


def _class_for(project: Project, label: str, line: int, report: LabelImportReport,
               classes: dict[str, LabelClass], create_classes: bool) -> LabelClass | None:
    """The class called ``label``, created if allowed; None (noted in the report) if not."""
    label_class = classes.get(label)
    if label_class is not None:
        return label_class
    if not create_classes:
        report.unknown_classes[label] = report.unknown_classes.get(label, 0) + 1
        return None
    try:
        label_class = add_class(project, clean_name(label, "class name"))
    except LabelerError as exc:
        report.bad_rows.append((line, str(exc)))
        return None
    classes[label] = label_class
    report.created_classes.append(label)
    return label_class
