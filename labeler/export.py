"""Dataset exports: CSV, JSON Lines and class folders, streamed from one snapshot.

Every export reads what it needs with ONE streamed SELECT. In SQLite (WAL mode) a statement
sees one snapshot of the database from its first step until it is reset, and pysqlite opens
no transaction for a SELECT by itself, so a single statement is what makes the export
consistent while annotators keep labelling. Streaming (``yield_per``) keeps memory constant:
rows are fetched in batches and image bytes are copied file by file.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from .errors import LabelerError
from .extensions import db
from .models import Annotation, Image, LabelClass, Project, User, rfc3339
from .storage import BlobStore, atomic_folder, atomic_writer, extension_for

FORMATS = ("csv", "jsonl", "folders", "model")
# image_id and sha256 join a row to the API's images; file_name is the name it was imported as.
COLUMNS = ("image_id", "file_name", "sha256", "label", "annotator", "labelled_at")
PREDICTION_COLUMNS = ("predicted", "confidence")
BATCH_ROWS = 1000  # rows per fetch from the database, and per yielded text chunk
# Formats keras.utils.image_dataset_from_directory reads; others are converted to PNG.
KERAS_FORMATS = frozenset({"JPEG", "MPO", "PNG", "GIF", "BMP"})
_UNSAFE = re.compile(r"[^\w. ()+,=@-]+")  # \w: letters of any script, digits, _


@dataclass(frozen=True)
class ExportRow:
    """One image as exported: its current label (if any) and the latest prediction."""

    image_id: int
    file_name: str
    sha256: str
    format: str
    label: str | None
    annotator: str | None
    labelled_at: datetime | None
    predicted: str | None
    confidence: float | None

    def as_dict(self, include_predictions: bool) -> dict[str, str | int | float | None]:
        """The row's export columns (``labelled_at`` in RFC 3339, UTC with its offset)."""
        data: dict[str, str | int | float | None] = {
            "image_id": self.image_id, "file_name": self.file_name, "sha256": self.sha256,
            "label": self.label, "annotator": self.annotator,
            "labelled_at": rfc3339(self.labelled_at),
        }
        if include_predictions:
            data["predicted"] = self.predicted
            data["confidence"] = self.confidence
        return data


def _rows_statement(project: Project, *, labelled_only: bool, order_by_label: bool) -> Select:
    """One SELECT giving every exported column, so the export is one snapshot."""
    label = aliased(LabelClass)
    predicted = aliased(LabelClass)
    # The current annotation: the latest one not undone (what Image.label_class_id mirrors).
    current = (
        select(Annotation.id)
        .where(Annotation.image_id == Image.id, Annotation.undone_at.is_(None))
        .order_by(Annotation.created_at.desc(), Annotation.id.desc())
        .limit(1)
        .correlate(Image)
        .scalar_subquery()
    )
    statement = (
        select(Image.id, Image.original_name, Image.sha256, Image.format, label.name, User.username,
               Annotation.created_at, predicted.name, Image.confidence)
        .select_from(Image)
        .outerjoin(label, label.id == Image.label_class_id)
        .outerjoin(Annotation, Annotation.id == current)
        .outerjoin(User, User.id == Annotation.annotator_id)
        .outerjoin(predicted, predicted.id == Image.predicted_class_id)
        .where(Image.project_id == project.id)
    )
    if labelled_only:
        statement = statement.where(Image.label_class_id.is_not(None))
    if order_by_label:
        # Folders: grouped per class, in a fixed pseudo-random order (by hash) for the split.
        statement = statement.order_by(Image.label_class_id, Image.sha256)
    else:
        statement = statement.order_by(Image.id)
    return statement


def iter_rows(project: Project, *, include_unlabelled: bool = False,
              order_by_label: bool = False) -> Iterator[ExportRow]:
    """Stream the project's images as export rows from one database snapshot.

    Args:
        project: the project to export.
        include_unlabelled: also yield images without a label (with their prediction).
        order_by_label: group rows by class (ordered by SHA-256 within a class) instead of
            import order.

    Yields:
        One ExportRow per image, fetched from the database in batches.
    """
    statement = _rows_statement(project, labelled_only=not include_unlabelled,
                                order_by_label=order_by_label)
    result = db.session.execute(statement.execution_options(yield_per=BATCH_ROWS))
    try:
        for row in result:
            yield ExportRow(*row)
    finally:
        result.close()  # ends the snapshot even when the consumer stops early


def columns(include_predictions: bool) -> tuple[str, ...]:
    """Column names of the CSV and JSON Lines exports."""
    return COLUMNS + PREDICTION_COLUMNS if include_predictions else COLUMNS


#: Per class name, the confidence an auto-tag needs to be exported (None: none is).
Thresholds = dict[str, float | None]


def _export_rows(project: Project, include_predictions: bool,
                 thresholds: Thresholds | None) -> Iterator[ExportRow]:
    """The rows to export: with ``thresholds``, only the auto-tags that reach them."""
    for row in iter_rows(project, include_unlabelled=include_predictions):
        if thresholds is None or row.label is not None:
            yield row
            continue
        needed = thresholds.get(row.predicted or "")
        if needed is not None and row.confidence is not None and row.confidence >= needed:
            yield row


def iter_csv(project: Project, *, include_predictions: bool = False,
             thresholds: Thresholds | None = None) -> Iterator[str]:
    """Stream the CSV export as text chunks: a header, then one row per image.

    Args:
        project: the project to export.
        include_predictions: add ``predicted`` and ``confidence`` columns and rows for the
            unlabelled images (the auto-tagged collection).
        thresholds: keep only the auto-tags (unlabelled rows) whose confidence reaches
            their class's threshold (``rounds.confidence_thresholds``).

    Yields:
        Chunks of CSV text (``\\r\\n`` line ends, as the csv module writes them).
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(include_predictions))
    writer.writeheader()
    for count, row in enumerate(_export_rows(project, include_predictions, thresholds), 1):
        writer.writerow({key: "" if value is None else value
                         for key, value in row.as_dict(include_predictions).items()})
        if count % BATCH_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def iter_jsonl(project: Project, *, include_predictions: bool = False,
               thresholds: Thresholds | None = None) -> Iterator[str]:
    """Stream the JSON Lines export: one JSON object per image, null where nothing is known.

    Args:
        project: the project to export.
        include_predictions: add ``predicted`` and ``confidence`` and the unlabelled images.
        thresholds: as in :func:`iter_csv`.

    Yields:
        Chunks of text, each holding whole lines.
    """
    lines: list[str] = []
    for row in _export_rows(project, include_predictions, thresholds):
        lines.append(json.dumps(row.as_dict(include_predictions), ensure_ascii=False) + "\n")
        if len(lines) == BATCH_ROWS:
            yield "".join(lines)
            lines.clear()
    yield "".join(lines)


def _atomic_text(out: Path, chunks: Iterable[str]) -> Path:
    """Write text chunks to ``out``, which appears only once complete."""
    with atomic_writer(Path(out), text=True) as handle:
        for chunk in chunks:
            handle.write(chunk)
    return Path(out)


def write_csv(project: Project, out: Path, *, include_predictions: bool = False,
              thresholds: Thresholds | None = None) -> Path:
    """Write the CSV export to ``out`` (never half-written under that name)."""
    return _atomic_text(out, iter_csv(project, include_predictions=include_predictions,
                                      thresholds=thresholds))


def write_jsonl(project: Project, out: Path, *, include_predictions: bool = False,
                thresholds: Thresholds | None = None) -> Path:
    """Write the JSON Lines export to ``out`` (never half-written under that name)."""
    return _atomic_text(out, iter_jsonl(project, include_predictions=include_predictions,
                                        thresholds=thresholds))


def safe_name(name: str, fallback: str = "unnamed") -> str:
    """A file or folder name safe on every OS: ``"T-shirt/top"`` → ``"T-shirt-top"``."""
    cleaned = _UNSAFE.sub("-", name).strip(" .-")
    return cleaned[:100] or fallback


def class_folder_names(project: Project) -> dict[str, str]:
    """Folder name of each class of the project, unique even when two names clean alike."""
    folders: dict[str, str] = {}
    used: set[str] = set()
    for label_class in project.classes:
        folder = safe_name(label_class.name, f"class-{label_class.id}")
        if folder.lower() in used:  # case-insensitive file systems would merge them
            folder = f"{folder}-{label_class.id}"
        used.add(folder.lower())
        folders[label_class.name] = folder
    return folders


def image_file_name(row: ExportRow) -> str:
    """Unique file name of an exported image: original stem + short SHA-256 + extension."""
    stem = PurePosixPath(row.file_name.replace("\\", "/")).stem
    image_format = row.format if row.format.upper() in KERAS_FORMATS else "PNG"
    return f"{safe_name(stem, 'image')}_{row.sha256[:12]}.{extension_for(image_format)}"


def _image_bytes_or_path(store: BlobStore, row: ExportRow) -> Path | bytes:
    """The stored original, or a PNG of it when Keras cannot read its format (WebP, TIFF)."""
    path = store.image_path(row.sha256, row.format)
    if row.format.upper() in KERAS_FORMATS:
        return path
    from .imaging import load_rgb

    buffer = io.BytesIO()
    load_rgb(path.read_bytes()).save(buffer, format="PNG")
    return buffer.getvalue()


def _split_of(index: int, val_split: float) -> str:
    """``val`` for the images of a class whose running share crosses a multiple of the split.

    Deterministic and stratified without knowing the class size in advance: of the first
    n images of a class, exactly floor(n * val_split) go to ``val``.
    """
    eps = 1e-9  # 0.2 * 5 is 1.0000000000000002 or 0.9999999999999999 depending on the order
    return "val" if int((index + 1) * val_split + eps) > int(index * val_split + eps) else "train"


@dataclass
class FolderExport:
    """What a folders export wrote."""

    path: Path
    images: int
    per_folder: dict[str, int]


def _folder_entries(project: Project, store: BlobStore, val_split: float | None
                    ) -> Iterator[tuple[str, Path | bytes | None]]:
    """(relative path, content) pairs of a folders export; None content = a directory."""
    if val_split is not None and not 0 < val_split < 1:
        raise LabelerError(f"The validation split is {val_split}; give a fraction between 0 and "
                           "1, such as 0.2.")
    folders = class_folder_names(project)
    splits = ("train", "val") if val_split is not None else ("",)
    # Every class gets its folder in every split, so train/ and val/ infer the same classes
    # in the same order even when a small class has no validation image.
    for split in splits:
        for label_class in project.classes:
            if not label_class.archived:
                yield str(PurePosixPath(split, folders[label_class.name])), None
    current_label: str | None = None
    index = 0
    for row in iter_rows(project, order_by_label=True):
        assert row.label is not None  # labelled images only
        if row.label != current_label:
            current_label, index = row.label, 0
        folder = folders.get(row.label) or safe_name(row.label)  # a class added since
        split = _split_of(index, val_split) if val_split is not None else ""
        index += 1
        yield str(PurePosixPath(split, folder, image_file_name(row))), \
            _image_bytes_or_path(store, row)


def write_folders(project: Project, out: Path, store: BlobStore, *,
                  val_split: float | None = None) -> FolderExport:
    """Export the labelled images as one folder per class, in a zip or a directory.

    The layout is what ``keras.utils.image_dataset_from_directory`` reads: ``CLASS/FILE``,
    or ``train/CLASS/FILE`` and ``val/CLASS/FILE`` with ``val_split``. The export is built
    under a temporary name next to ``out`` and moved into place when complete.

    Args:
        project: the project to export.
        out: a ``.zip`` file, or a directory (which must not exist yet or be empty).
        store: the blob store holding the originals.
        val_split: fraction of each class's images put in ``val/`` (e.g. 0.2), or None.

    Returns:
        The path written, the number of images and the images per folder.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    per_folder: dict[str, int] = {}
    images = 0

    def count(relative: str) -> None:
        nonlocal images
        images += 1
        folder = str(PurePosixPath(relative).parent)
        per_folder[folder] = per_folder.get(folder, 0) + 1

    if out.suffix.lower() == ".zip":
        with atomic_writer(out) as handle, \
                zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
            # Images are already compressed: storing them is as small and much faster.
            for relative, content in _folder_entries(project, store, val_split):
                if content is None:
                    archive.writestr(relative + "/", b"")
                    continue
                if isinstance(content, Path):
                    archive.write(content, relative)
                else:
                    archive.writestr(relative, content)
                count(relative)
        return FolderExport(out, images, per_folder)

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LabelerError(f"{out} already exists and is not an empty directory; give a new "
                           "directory, or a path ending in .zip for a zip file.")
    with atomic_folder(out) as folder:
        for relative, content in _folder_entries(project, store, val_split):
            target = folder / relative
            if content is None:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:
                target.write_bytes(content)
            count(relative)
    return FolderExport(out, images, per_folder)


def model_exporter() -> Callable[[Project, Path], object] | None:
    """``labeler.model_export.export_model`` when that module is installed, else None.

    It returns a ``labeler.model_export.ExportedModel``, whose ``str()`` names the round.
    """
    try:
        from .model_export import export_model
    except ImportError:
        return None
    return export_model


MODEL_UNAVAILABLE = ("The model export is not available in this version of labeler; export "
                     "csv, jsonl or folders instead.")
