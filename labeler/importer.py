"""Import images into a project: validate, dedupe, store, thumbnail.

Folders, zip archives and browser uploads all go through ``import_sources``. Decoding and
thumbnailing run on a few threads (Pillow releases the GIL while decoding); the database
is written from the calling thread only, in batches, each batch one transaction. Files are
stored before their rows are committed, so a crash can leave an unreferenced file (harmless
and reused by the next import) but never a row without its file.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .annotations import record_label, record_tags
from .extensions import db
from .imaging import DecodedImage, InvalidImage, decode_and_thumbnail
from .models import Image, Project, User
from .projects import class_by_name
from .queue import UNRANKED_BASE
from .sources import Rejected, Source, SourceLimits, Upload, iter_paths, iter_uploads
from .storage import BlobStore, blob_store, data_root

BATCH_SIZE = 256

ProgressCallback = Callable[[int, int], None]


@dataclass
class ImportReport:
    """What an import did, for the CLI summary, the upload page and the API."""

    imported: int = 0
    duplicates: int = 0
    labelled: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)  # new images, in import order

    def as_dict(self) -> dict[str, object]:
        """The report as JSON for the upload page and the API."""
        return {"imported": self.imported, "duplicates": self.duplicates,
                "labelled": self.labelled, "image_ids": self.image_ids,
                "rejected": [{"name": r.name, "reason": r.reason} for r in self.rejected]}

    def summary(self) -> str:
        return (f"{self.imported} imported, {self.duplicates} duplicates, "
                f"{len(self.rejected)} rejected" +
                (f", {self.labelled} labelled from folder names" if self.labelled else ""))


@dataclass(frozen=True)
class _Processed:
    source: Source
    sha256: str
    decoded: DecodedImage


def limits_from_config() -> SourceLimits:
    """Import limits from the app's settings."""
    config = current_app.config
    return SourceLimits(
        max_file_bytes=config["MAX_UPLOAD_MB"] * 2**20,
        zip_max_ratio=config["ZIP_MAX_RATIO"],
        zip_max_total_bytes=config["ZIP_MAX_TOTAL_MB"] * 2**20,
        skip_dir=data_root(),
    )


def _process(source: Source, store: BlobStore, thumbnail_size: int) -> _Processed | Rejected:
    """Read, hash, validate and store one file (runs on a worker thread)."""
    try:
        data = source.read()
    except Exception as exc:  # noqa: BLE001 - any read failure is this file's problem only
        return Rejected(source.name, f"cannot read file: {exc}")
    try:
        decoded = decode_and_thumbnail(data, thumbnail_size)
    except InvalidImage as exc:
        return Rejected(source.name, str(exc))
    except Exception as exc:  # noqa: BLE001 - Pillow plugins raise many types on bad input
        return Rejected(source.name, f"cannot decode image: {type(exc).__name__}: {exc}")
    sha256 = hashlib.sha256(data).hexdigest()
    store.put_image(sha256, decoded.format, data)
    if not store.thumbnail_path(sha256).exists():
        store.put_thumbnail(sha256, decoded.thumbnail_jpeg)
    return _Processed(source, sha256, decoded)


def _processed_in_order(items: Iterable[Source | Rejected], store: BlobStore,
                        thumbnail_size: int, workers: int) -> Iterator[_Processed | Rejected]:
    """Process sources on ``workers`` threads, yielding results in input order.

    At most a small window of files is in flight, so memory stays flat for any import size.
    """
    window = max(1, workers) * 8
    pending: list[Future[_Processed | Rejected] | Rejected] = []
    with ThreadPoolExecutor(max_workers=max(1, workers),
                            thread_name_prefix="labeler-import") as pool:
        for item in items:
            if isinstance(item, Rejected):
                pending.append(item)
            else:
                pending.append(pool.submit(_process, item, store, thumbnail_size))
            while len(pending) > window:
                head = pending.pop(0)
                yield head if isinstance(head, Rejected) else head.result()
        for head in pending:
            yield head if isinstance(head, Rejected) else head.result()


def _insert_batch(project: Project, batch: list[_Processed], report: ImportReport,
                  labels_from_folders: bool, annotator: User | None) -> None:
    """Insert one batch of images in one transaction, counting duplicates."""
    shas = {p.sha256 for p in batch}
    existing = {
        image.sha256: image
        for image in db.session.scalars(
            select(Image).where(Image.project_id == project.id, Image.sha256.in_(shas))
        )
    }
    first_seen: set[int] = set()  # id() of the items that create their image
    for processed in batch:
        if processed.sha256 in existing:
            report.duplicates += 1
            continue
        decoded = processed.decoded
        existing[processed.sha256] = Image(
            project_id=project.id, sha256=processed.sha256,
            original_name=processed.source.name[-1024:], format=decoded.format,
            width=decoded.width, height=decoded.height, size_bytes=processed.source.size,
        )
        db.session.add(existing[processed.sha256])
        first_seen.add(id(processed))
    db.session.flush()
    for processed in batch:
        image = existing[processed.sha256]
        if id(processed) in first_seen:
            report.imported += 1
            report.image_ids.append(image.id)
            image.queue_rank = UNRANKED_BASE + image.id  # after ranked images, in order
        # In file order, so the first copy's folder wins; a later copy (or a re-run of an
        # earlier plain import) only labels an image that has no label yet.
        if labels_from_folders and processed.source.folder and image.unlabelled:
            _label_from_folder(project, image, processed.source.folder, annotator, report)
    db.session.commit()


def _label_from_folder(project: Project, image: Image, folder: str, annotator: User | None,
                       report: ImportReport) -> None:
    label_class = class_by_name(project, folder, create=True)
    if project.multi_label:  # the folder is the image's one tag
        record_tags(image, [label_class], annotator, source="folder")
    else:
        record_label(image, label_class, annotator, source="folder")
    report.labelled += 1


def _commit_batch(project: Project, batch: list[_Processed], report: ImportReport,
                  labels_from_folders: bool, annotator: User | None) -> None:
    """Insert a batch; if a concurrent import took some of its images, go one by one."""
    if _try_insert(project, batch, report, labels_from_folders, annotator):
        return
    for processed in batch:
        if not _try_insert(project, [processed], report, labels_from_folders, annotator):
            report.duplicates += 1


def _try_insert(project: Project, batch: list[_Processed], report: ImportReport,
                labels_from_folders: bool, annotator: User | None) -> bool:
    """Insert a batch, or roll it back and leave ``report`` as it was."""
    before = (report.imported, report.duplicates, report.labelled, len(report.image_ids))
    try:
        _insert_batch(project, batch, report, labels_from_folders, annotator)
        return True
    except IntegrityError:
        db.session.rollback()
        report.imported, report.duplicates, report.labelled = before[:3]
        del report.image_ids[before[3]:]
        return False


def import_sources(project: Project, items: Iterable[Source | Rejected], *, total: int,
                   labels_from_folders: bool = False, annotator: User | None = None,
                   on_progress: ProgressCallback | None = None) -> ImportReport:
    """Import candidate files into ``project``; the shared core of every import path.

    Args:
        project: the project receiving the images.
        items: sources to read (and already-rejected entries to report).
        total: number of items, for progress.
        labels_from_folders: label each new image with its parent folder's name.
        annotator: who the folder labels are attributed to (None: the import itself).
        on_progress: called as ``on_progress(done, total)`` after each file.

    Returns:
        The report: imported, duplicates, rejected with reasons, labelled.
    """
    config = current_app.config
    report = ImportReport()
    batch: list[_Processed] = []
    done = 0
    results = _processed_in_order(items, blob_store(), config["THUMBNAIL_SIZE"],
                                  config["IMPORT_WORKERS"])
    for result in results:
        if isinstance(result, Rejected):
            report.rejected.append(result)
        else:
            batch.append(result)
            if len(batch) >= BATCH_SIZE:
                _commit_batch(project, batch, report, labels_from_folders, annotator)
                batch = []
        done += 1
        if on_progress:
            on_progress(done, total)
    if batch:
        _commit_batch(project, batch, report, labels_from_folders, annotator)
    return report


def import_paths(project: Project, paths: Iterable[Path], *, labels_from_folders: bool = False,
                 annotator: User | None = None,
                 on_progress: ProgressCallback | None = None) -> ImportReport:
    """Import folders (recursively), zip files and single image files into ``project``."""
    items = list(iter_paths([Path(p) for p in paths], limits_from_config()))
    return import_sources(project, items, total=len(items),
                          labels_from_folders=labels_from_folders, annotator=annotator,
                          on_progress=on_progress)


UPLOAD_SPOOL_PREFIX = "upload-"
# An upload spool older than this belongs to a request whose process died (kill -9, power
# cut): no upload takes a day, and several servers may share the data directory.
ABANDONED_SPOOL_AGE_S = 24 * 3600


def remove_abandoned_upload_spools(home: Path, now: float | None = None) -> int:
    """Delete upload spool folders left behind by a crashed server; return how many."""
    now = time.time() if now is None else now
    removed = 0
    for folder in (Path(home) / "tmp").glob(f"{UPLOAD_SPOOL_PREFIX}*"):
        try:
            if folder.is_dir() and now - folder.stat().st_mtime > ABANDONED_SPOOL_AGE_S:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except FileNotFoundError:
            continue  # another server cleaned it first
    return removed


def import_uploads(project: Project, files: list[Upload], *, labels_from_folders: bool = False,
                   annotator: User | None = None) -> ImportReport:
    """Import files uploaded through the browser or the API (images and zips).

    Uploads are spooled into a private temporary folder in the data directory under names
    we choose, imported like any other files, and the folder is removed afterwards.
    """
    spool_root = data_root() / "tmp"
    spool_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=spool_root, prefix=UPLOAD_SPOOL_PREFIX) as workdir:
        items = list(iter_uploads(files, Path(workdir), limits_from_config()))
        return import_sources(project, items, total=len(items),
                              labels_from_folders=labels_from_folders, annotator=annotator)
