"""``labeler restore``: bring a project back from a ``labeler backup`` archive.

Restore verifies every checksum before writing anything, inserts the rows with new ids
(the target may hold other projects) in one transaction and writes the project's files
before committing; a failure removes them again. Member names never become paths: every
file written is named by the restored rows, and originals must hash to their name.

Nothing in an archive is executed. The checksums sit in the same file as what they check,
so they prove the archive is intact, not that it is harmless: rows are JSON, vectors raw
numbers, and round heads plain arrays read with ``allow_pickle=False``. A head that is a
pickle (format 1) or anything else is left out with a sentence in the report, and the
scheduler retrains that round from the restored labels.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import shutil
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import DateTime, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import generate_password_hash

from .backup import CHUNK_BYTES, FORMAT, FORMAT_VERSION, MANIFEST, ROW_BATCH, TABLES, TAG_TABLES
from .cache import app_cache
from .errors import AlreadyExists, LabelerError
from .extensions import db
from .learning.head_store import UnreadableHead, read_head_arrays, write_head_arrays
from .models import JobStatus, Project
from .projects import clean_name
from .queue import SKIPPED_BASE, UNRANKED_BASE
from .rounds import head_path
from .storage import BlobStore, atomic_writer, data_root
from .vectors import ID_DTYPE, VECTOR_DTYPE, EmbeddingSpace, VectorStore

_HEAD_MEMBER = re.compile(r"^models/round-(\d+)\.(npz|pkl)$")
_PICKLED = ".pkl"


@dataclass
class RestoreReport:
    """What ``restore_project`` created."""

    project: str
    project_id: int
    counts: dict[str, int]
    created_users: list[str] = field(default_factory=list)
    #: Sentences about round heads that were left out (they retrain from the labels).
    skipped_heads: list[str] = field(default_factory=list)


def _damaged(archive: Path, why: str) -> LabelerError:
    return LabelerError(f"{archive} is damaged or not a labeler backup ({why}); nothing was "
                        "restored. Use another copy of the backup.")


def verify_archive(archive: Path) -> dict[str, Any]:
    """Check the manifest and every member's checksum; return the manifest.

    Raises:
        LabelerError: the file is not a readable backup, or a member is missing, extra or
            does not match its checksum.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            manifest = json.loads(zf.read(MANIFEST))
            if manifest.get("format") != FORMAT:
                raise _damaged(archive, "no labeler manifest")
            if manifest.get("format_version", 0) > FORMAT_VERSION:
                raise LabelerError(f"{archive} was written by a newer labeler (format "
                                   f"{manifest['format_version']}); upgrade labeler first.")
            members: dict[str, dict[str, Any]] = manifest["members"]
            present = set(zf.namelist()) - {MANIFEST}
            if present != set(members):
                odd = sorted(present.symmetric_difference(members))[:3]
                raise _damaged(archive, f"members do not match the manifest: {odd}")
            for name, expected in members.items():
                digest = hashlib.sha256()
                with zf.open(name) as member:
                    while chunk := member.read(CHUNK_BYTES):
                        digest.update(chunk)
                if digest.hexdigest() != expected["sha256"]:
                    raise _damaged(archive, f"checksum of {name} does not match")
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise _damaged(archive, str(exc) or type(exc).__name__) from exc
    return manifest


def _read_rows(zf: zipfile.ZipFile, table: str) -> Iterator[dict[str, Any]]:
    columns = (TABLES | TAG_TABLES)[table].c
    with zf.open(f"rows/{table}.jsonl") as member:
        for line in member:
            record = json.loads(line)
            unknown = set(record) - set(columns.keys())
            if unknown:
                raise LabelerError(f"The backup has columns this labeler does not know "
                                   f"({table}: {sorted(unknown)}); upgrade labeler first.")
            for key, value in record.items():
                if value is not None and isinstance(columns[key].type, DateTime):
                    record[key] = datetime.fromisoformat(value)
            yield record


def _batches(rows: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == ROW_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert(table: str, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows without their old ids; the new ids, in the order of ``rows``."""
    if not rows:
        return []
    target = TABLES[table]
    values = [{k: v for k, v in row.items() if k != "id"} for row in rows]
    result = db.session.execute(
        insert(target).returning(target.c.id, sort_by_parameter_order=True), values)
    return [row[0] for row in result]


def _remap_rank(rank: int | None, new_id: int) -> int | None:
    # Unranked and skipped images queue by their id; keep that meaning with the new id.
    if rank is not None and rank >= SKIPPED_BASE:
        return SKIPPED_BASE + new_id
    if rank is not None and rank >= UNRANKED_BASE:
        return UNRANKED_BASE + new_id
    return rank


def _remap_metrics(metrics: dict[str, Any], classes: dict[int, int],
                   images: dict[int, int]) -> dict[str, Any]:
    """Metrics name classes by name, except the head's class ids and suspects' image ids."""
    metrics = dict(metrics or {})
    for key in ("classes", "tags"):  # class ids of a head's columns (tags: multi-label)
        if key in metrics:
            metrics[key] = [classes.get(int(c), c) for c in metrics[key]]
    if "suspected_errors" in metrics:
        metrics["suspected_errors"] = [{**e, "image_id": images.get(e["image_id"])}
                                       for e in metrics["suspected_errors"]]
    return metrics


class _Restorer:
    """Inserts one archive's rows with new ids and writes the files they name."""

    def __init__(self, zf: zipfile.ZipFile, home: Path) -> None:
        self.zf, self.home = zf, home
        self.written: list[Path] = []
        self.classes: dict[int, int] = {}
        self.images: dict[int, int] = {}
        self.users: dict[int, int] = {}
        self.created_users: list[str] = []
        self.counts: dict[str, int] = {}
        self.skipped_heads: list[str] = []

    def copy_blobs(self) -> None:
        """Store the archive's files under their content names (outside the transaction:
        an identical file may already be there, and an unused one harms nothing)."""
        blobs = BlobStore(self.home)
        members = set(self.zf.namelist())
        for image in _read_rows(self.zf, "image"):
            sha, fmt = image["sha256"], image["format"]
            original = blobs.image_path(sha, fmt).relative_to(self.home).as_posix()
            data = self.zf.read(f"blobs/{original}")
            if hashlib.sha256(data).hexdigest() != sha:
                raise LabelerError(f"Image {image['original_name']!r} in the backup does not "
                                   "match its SHA-256; nothing was restored.")
            blobs.put_image(sha, fmt, data)
            for path in (blobs.thumbnail_path(sha), blobs.display_path(sha)):
                name = f"blobs/{path.relative_to(self.home).as_posix()}"
                if not path.exists() and name in members:
                    with atomic_writer(path) as out:
                        out.write(self.zf.read(name))

    def insert_rows(self, name: str) -> int:
        """Insert project, classes, users, images, annotations, rounds; the new project id."""
        (project,) = list(_read_rows(self.zf, "project"))
        (project_id,) = _insert("project", [{**project, "name": name}])
        classes = list(_read_rows(self.zf, "label_class"))
        new = _insert("label_class", [{**c, "project_id": project_id} for c in classes])
        self.classes = {c["id"]: n for c, n in zip(classes, new, strict=True)}
        self._match_users()
        self.counts["image"] = 0
        images = TABLES["image"]
        for batch in _batches(_read_rows(self.zf, "image")):
            new = _insert("image", [{
                **row, "project_id": project_id, "leased_to_id": None, "lease_expires_at": None,
                "label_class_id": self.classes.get(row["label_class_id"]),
                "predicted_class_id": self.classes.get(row["predicted_class_id"])}
                for row in batch])
            self.images.update((r["id"], n) for r, n in zip(batch, new, strict=True))
            ranks = [{"new_id": n, "rank": _remap_rank(r["queue_rank"], n)}
                     for r, n in zip(batch, new, strict=True)
                     if (r["queue_rank"] or 0) >= UNRANKED_BASE]
            if ranks:
                db.session.execute(images.update().where(images.c.id == bindparam("new_id"))
                                   .values(queue_rank=bindparam("rank")), ranks)
            self.counts["image"] += len(batch)
        self.counts["annotation"] = 0
        annotations: dict[int, int] = {}  # archive id -> new id
        reviews: list[dict[str, int]] = []
        for batch in _batches(_read_rows(self.zf, "annotation")):
            new = _insert("annotation", [{
                **row, "project_id": project_id, "image_id": self.images[row["image_id"]],
                # None: a multi-label annotation (its tags are annotation_tag rows)
                "label_class_id": (self.classes[row["label_class_id"]]
                                   if row["label_class_id"] is not None else None),
                "annotator_id": self.users.get(row["annotator_id"]),
                # Archives written before undos recorded who have no undone_by_id.
                "undone_by_id": self.users.get(row.get("undone_by_id")),
                "reviews_id": None} for row in batch])  # set below, once all have new ids
            annotations.update((r["id"], n) for r, n in zip(batch, new, strict=True))
            reviews += [{"new_id": n, "reviewed": r["reviews_id"]}
                        for r, n in zip(batch, new, strict=True) if r.get("reviews_id")]
            self.counts["annotation"] += len(batch)
        reviews = [{**r, "reviewed": annotations[r["reviewed"]]} for r in reviews
                   if r["reviewed"] in annotations]
        if reviews:
            table = TABLES["annotation"]
            db.session.execute(table.update().where(table.c.id == bindparam("new_id"))
                               .values(reviews_id=bindparam("reviewed")), reviews)
        self._insert_tag_rows(annotations)
        rounds = list(_read_rows(self.zf, "model_round"))
        for round_ in rounds:
            round_["project_id"] = project_id
            round_["metrics"] = _remap_metrics(round_["metrics"], self.classes, self.images)
            if round_["status"] in (JobStatus.QUEUED, JobStatus.RUNNING):
                round_["status"] = JobStatus.FAILED.value
                round_["message"] = "Interrupted: the backup was taken while it was running."
        _insert("model_round", rounds)
        self.counts["model_round"] = len(rounds)
        self._insert_members(project_id)
        return project_id

    def _insert_members(self, project_id: int) -> None:
        """Who may see the project, and in what role (users matched by username).

        Archives written before project membership have none: the restored project is then
        seen by global leads, who add its members.
        """
        self.counts["project_member"] = 0
        if "rows/project_member.jsonl" not in set(self.zf.namelist()):
            return
        members = [{**row, "project_id": project_id, "user_id": self.users[row["user_id"]]}
                   for row in _read_rows(self.zf, "project_member")]
        self.counts["project_member"] = len(_insert("project_member", members))

    def _insert_tag_rows(self, annotations: dict[int, int]) -> None:
        """Tag sets and tag scores (multi-label projects), their ids remapped."""
        members = set(self.zf.namelist())
        ids = {"annotation_id": annotations, "image_id": self.images,
               "label_class_id": self.classes}
        for name, table in TAG_TABLES.items():
            self.counts[name] = 0
            if f"rows/{name}.jsonl" not in members:
                continue  # written before multi-label projects existed
            for batch in _batches(_read_rows(self.zf, name)):
                db.session.execute(insert(table), [
                    {k: ids[k][v] if k in ids else v for k, v in row.items()} for row in batch])
                self.counts[name] += len(batch)

    def _match_users(self) -> None:
        """Annotators by username; unknown ones become disabled accounts nobody can use."""
        users = TABLES["user"]
        for row in _read_rows(self.zf, "user"):
            found = db.session.scalar(select(users.c.id).where(
                users.c.username == row["username"]))
            if found is None:
                (found,) = _insert("user", [{
                    "username": row["username"], "role": row["role"], "active": False,
                    "password_hash": generate_password_hash(secrets.token_urlsafe(32))}])
                self.created_users.append(row["username"])
            self.users[row["id"]] = found

    def write_vectors(self, project_id: int, spaces: Iterable[str]) -> None:
        """The project's vectors, image ids remapped."""
        self.counts["vectors"] = 0
        for key in spaces:
            meta = json.loads(self.zf.read(f"vectors/{key}.json"))
            store = VectorStore(self.home, project_id, EmbeddingSpace(**meta))
            ids = np.frombuffer(self.zf.read(f"vectors/{key}.ids"), dtype=ID_DTYPE)
            vectors_size = self.zf.getinfo(f"vectors/{key}.f16").file_size
            if vectors_size != len(ids) * store.space.dim * VECTOR_DTYPE.itemsize:
                raise LabelerError(f"The vectors of space {key} do not match their ids.")
            new_ids = np.array([self.images[int(i)] for i in ids], dtype=ID_DTYPE)
            self.written += [store.meta_path, store.vectors_path, store.ids_path]
            with atomic_writer(store.vectors_path) as out, \
                    self.zf.open(f"vectors/{key}.f16") as source:
                shutil.copyfileobj(source, out, CHUNK_BYTES)
            with atomic_writer(store.ids_path) as out:
                out.write(new_ids.tobytes())
            with atomic_writer(store.meta_path) as out:
                out.write(json.dumps(meta, indent=2).encode())
            self.counts["vectors"] += len(ids)

    def write_heads(self, project_id: int, heads: dict[int, str]) -> None:
        """The round heads that are plain arrays, class ids remapped; the rest left out.

        A head is read as data only (``allow_pickle=False``) and never unpickled: an old
        format-1 pickle, or a member that is not plain arrays, is left out with a sentence
        saying so, and the scheduler retrains that round from the restored labels.
        """
        self.counts["heads"] = 0
        for number, member in sorted(heads.items()):
            if member.endswith(_PICKLED):
                self.skipped_heads.append(
                    f"The model of round {number} is an old pickle, which labeler never "
                    "loads (a pickle can run code); it was left out and is retrained from "
                    "the labels.")
                continue
            try:
                kind, arrays = read_head_arrays(io.BytesIO(self.zf.read(member)))
                columns = "tags_" if "tags_" in arrays else "classes_"  # a tag head's ids
                arrays[columns] = np.array([self.classes[int(c)] for c in arrays[columns]])
            except (UnreadableHead, KeyError, TypeError, ValueError) as exc:
                why = (f"it names class {exc} that the backup does not have"
                       if isinstance(exc, KeyError) else f"it is not plain data: {exc}")
                self.skipped_heads.append(
                    f"The model of round {number} could not be read ({why}); it was left "
                    "out and is retrained from the labels.")
                continue
            path = head_path(project_id, number)
            self.written.append(path)
            with atomic_writer(path) as out:
                write_head_arrays(out, kind, arrays)
            self.counts["heads"] += 1


def _head_members(manifest: dict[str, Any]) -> dict[int, str]:
    """Round number -> archive member of that round's head (arrays, or an old pickle)."""
    heads: dict[int, str] = {}
    for member in manifest["members"]:
        match = _HEAD_MEMBER.match(member)
        if match and (int(match[1]) not in heads or not member.endswith(_PICKLED)):
            heads[int(match[1])] = member  # both formats: the arrays win
    return heads


def restore_project(archive: Path, new_name: str | None = None) -> RestoreReport:
    """Bring back a project from a backup, under its own name or ``new_name``.

    Raises:
        LabelerError: the archive is damaged (nothing is written), or the name is taken.
    """
    manifest = verify_archive(archive)
    name = clean_name(new_name or manifest["project"], "project name")
    taken = AlreadyExists(f"A project named {name!r} already exists; restore it under "
                          "another name with --as NEW_NAME.")
    if db.session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise taken
    home = data_root()
    heads = _head_members(manifest)
    with zipfile.ZipFile(archive) as zf:
        restorer = _Restorer(zf, home)
        restorer.copy_blobs()
        try:
            project_id = restorer.insert_rows(name)
            restorer.write_vectors(project_id, manifest.get("vector_spaces", {}))
            restorer.write_heads(project_id, heads)
            db.session.commit()
            # SQLite reuses the highest id after a rollback: nothing cached under this id
            # may outlive a project that once had it.
            app_cache().invalidate_project(project_id)
        except BaseException as exc:
            db.session.rollback()
            for path in restorer.written:
                path.unlink(missing_ok=True)
            for folder in {path.parent for path in restorer.written}:
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()  # created for this project only
            if isinstance(exc, IntegrityError):
                raise taken from exc
            raise
    return RestoreReport(name, project_id, restorer.counts, restorer.created_users,
                         restorer.skipped_heads)
