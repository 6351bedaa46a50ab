"""Project snapshots: ``labeler backup`` writes one archive, ``labeler restore`` reads it back.

The archive is a zip (stored, not compressed: images already are) holding::

    manifest.json               format, versions, project, counts, sha256 of every member
    rows/<table>.jsonl          the project's rows, one JSON object a line
    blobs/<kind>/ab/<sha>.<ext> originals, thumbnails and display renditions
    vectors/<space>.{f16,ids,json}  the embedding matrix of each space, image ids as stored
    models/round-<n>.pkl        the fitted head of each round that has one

Consistency while the server runs: on SQLite the database is first copied with the online
backup API (one read transaction, so one instant) and every row is read from that copy;
elsewhere the rows are read in one REPEATABLE READ transaction. Files are copied after
that, which is safe because blobs are content-addressed (a referenced blob never changes),
vector files are append-only (rows are filtered to the images of the snapshot) and a
round's head is written before the round is marked done.

Restore verifies every checksum before writing anything, inserts the rows with new ids
(the target may hold other projects) in one transaction and writes the project's files
before committing; a failure removes them again. Member names never become paths: every
file written is named by the restored rows, and originals must hash to their name.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import secrets
import shutil
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
from sqlalchemy import Connection, DateTime, Table, bindparam, create_engine, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool
from werkzeug.security import generate_password_hash

from . import __version__
from .errors import AlreadyExists, LabelerError
from .extensions import db
from .models import Annotation, Image, JobStatus, LabelClass, ModelRound, Project, User, utcnow
from .projects import clean_name, get_project
from .queue import SKIPPED_BASE, UNRANKED_BASE
from .storage import BlobStore, atomic_writer, data_root
from .training import head_path
from .vectors import ID_DTYPE, VECTOR_DTYPE, EmbeddingSpace, VectorStore

FORMAT = "labeler-project-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNK_BYTES = 1 << 20
ROW_BATCH = 1_000  # rows per INSERT batch on restore
VECTOR_ROWS = 8_192  # vector rows copied per step: bounded memory for a 1M-row matrix
# Order matters on restore: each table's foreign keys point to tables before it.
TABLES: dict[str, Table] = {t.name: t for t in (
    Project.__table__, LabelClass.__table__, User.__table__, Image.__table__,
    Annotation.__table__, ModelRound.__table__)}
USER_COLUMNS = ("id", "username", "role")  # never password hashes or tokens


@dataclass
class BackupReport:
    """What ``backup_project`` wrote."""

    path: Path
    project: str
    counts: dict[str, int]
    size_bytes: int


@dataclass
class RestoreReport:
    """What ``restore_project`` created."""

    project: str
    project_id: int
    counts: dict[str, int]
    created_users: list[str] = field(default_factory=list)


# --- writing --------------------------------------------------------------------------------


class _ArchiveWriter:
    """Adds members to a zip, recording each one's sha256 and size for the manifest."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.zip = zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True)
        self.members: dict[str, dict[str, Any]] = {}

    @contextmanager
    def member(self, name: str) -> Iterator[Any]:
        digest, size = hashlib.sha256(), 0
        with self.zip.open(name, "w", force_zip64=True) as out:

            def write(data: bytes) -> None:
                nonlocal size
                digest.update(data)
                size += len(data)
                out.write(data)

            yield write
        self.members[name] = {"sha256": digest.hexdigest(), "size": size}

    def add_file(self, name: str, path: Path) -> None:
        with self.member(name) as write, open(path, "rb") as source:
            while chunk := source.read(CHUNK_BYTES):
                write(chunk)

    def close(self, manifest: dict[str, Any]) -> None:
        self.zip.writestr(MANIFEST, json.dumps({**manifest, "members": self.members}, indent=1))
        self.zip.close()


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@contextmanager
def _consistent_reader() -> Iterator[Connection]:
    """A connection that sees the whole database as of one instant."""
    engine = db.engine
    if engine.dialect.name != "sqlite":
        isolation = "REPEATABLE READ" if engine.dialect.name == "postgresql" else "SERIALIZABLE"
        with engine.connect().execution_options(isolation_level=isolation) as conn, \
                conn.begin():
            yield conn
        return
    spool = data_root() / "tmp"  # beside the data: /tmp may be small
    spool.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=spool, prefix="backup-") as folder:
        path = Path(folder) / "snapshot.sqlite3"
        live = engine.raw_connection()
        try:
            target = sqlite3.connect(path)
            try:
                # All pages in one step: one read transaction, so one consistent instant;
                # in WAL mode the server's writers are not blocked meanwhile.
                live.driver_connection.backup(target)  # type: ignore[union-attr]
            finally:
                target.close()
        finally:
            live.close()
        snapshot = create_engine(f"sqlite:///{path}", poolclass=NullPool)
        try:
            with snapshot.connect() as conn:
                yield conn
        finally:
            snapshot.dispose()


def _write_rows(archive: _ArchiveWriter, conn: Connection, table: str, query: Any,
                columns: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Stream rows into ``rows/<table>.jsonl``; return the few columns callers need later."""
    kept: list[dict[str, Any]] = []
    wanted = {"id", "sha256", "format", "number", "annotator_id"}
    with archive.member(f"rows/{table}.jsonl") as write:
        for row in conn.execute(query.execution_options(yield_per=ROW_BATCH)).mappings():
            record = {k: _json_value(v) for k, v in row.items()
                      if columns is None or k in columns}
            write((json.dumps(record) + "\n").encode())
            kept.append({k: row[k] for k in wanted if k in row})
    return kept


def _write_vectors(archive: _ArchiveWriter, home: Path, project_id: int,
                   image_ids: np.ndarray) -> dict[str, int]:
    """Copy each space's rows whose image is in the snapshot; returns rows per space."""
    folder = home / "vectors" / str(project_id)
    copied: dict[str, int] = {}
    for meta in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        space = EmbeddingSpace(**json.loads(meta.read_text()))
        store = VectorStore(home, project_id, space)
        # Only rows complete in both files count; later appends (images imported after the
        # snapshot) are filtered out by id, so the archive matches its rows exactly.
        ids = store.image_ids()
        keep = np.isin(ids, image_ids)
        matrix = store.matrix()
        with archive.member(f"vectors/{space.key}.f16") as write:
            for start in range(0, len(ids), VECTOR_ROWS):
                block = np.asarray(matrix[start:start + VECTOR_ROWS])
                write(np.ascontiguousarray(block[keep[start:start + VECTOR_ROWS]]).tobytes())
        with archive.member(f"vectors/{space.key}.ids") as write:
            write(ids[keep].astype(ID_DTYPE).tobytes())
        with archive.member(f"vectors/{space.key}.json") as write:
            write(meta.read_bytes())
        copied[space.key] = int(keep.sum())
    return copied


def backup_project(project_name: str, out: Path) -> BackupReport:
    """Write a consistent snapshot of a project (rows and files) to ``out``, atomically."""
    project_id = get_project(project_name).id
    home = data_root()
    blobs = BlobStore(home)
    counts: dict[str, int] = {}
    # Owner-only, as before: the archive holds the whole project.
    with atomic_writer(Path(out), mode=0o600) as handle:
        archive = _ArchiveWriter(handle)
        with _consistent_reader() as conn:
            project = conn.execute(select(TABLES["project"]).where(
                TABLES["project"].c.id == project_id)).mappings().one_or_none()
            if project is None:
                raise LabelerError(f"Project {project_name!r} was deleted during the backup.")
            kept: dict[str, list[dict[str, Any]]] = {}
            for name, table in TABLES.items():
                if name == "user":
                    continue  # only after annotations say who is referenced
                column = table.c.id if name == "project" else table.c.project_id
                kept[name] = _write_rows(archive, conn, name, select(table).where(
                    column == project_id).order_by(table.c.id))
                counts[name] = len(kept[name])
            annotators = sorted({r["annotator_id"] for r in kept["annotation"]
                                 if r["annotator_id"] is not None})
            users = TABLES["user"]
            counts["user"] = len(_write_rows(
                archive, conn, "user", select(users).where(users.c.id.in_(annotators))
                .order_by(users.c.id), USER_COLUMNS))
        for image in kept["image"]:
            sha = image["sha256"]
            path = blobs.image_path(sha, image["format"])
            if not path.exists():
                raise LabelerError(f"The stored file of image {image['id']} ({path}) is "
                                   "missing; the data directory is damaged, so no backup "
                                   "was written.")
            archive.add_file(f"blobs/{path.relative_to(home).as_posix()}", path)
            for extra in (blobs.thumbnail_path(sha), blobs.display_path(sha)):
                if extra.exists():
                    archive.add_file(f"blobs/{extra.relative_to(home).as_posix()}", extra)
        image_ids = np.array([r["id"] for r in kept["image"]], dtype=ID_DTYPE)
        vectors = _write_vectors(archive, home, project_id, image_ids)
        counts["vectors"] = sum(vectors.values())
        counts["heads"] = 0
        for round_ in kept["model_round"]:
            path = head_path(project_id, round_["number"])
            if path.exists():
                archive.add_file(f"models/round-{round_['number']}.pkl", path)
                counts["heads"] += 1
        archive.close({"format": FORMAT, "format_version": FORMAT_VERSION,
                       "labeler_version": __version__, "project": project["name"],
                       "created_at": utcnow().isoformat(), "database": db.engine.dialect.name,
                       "counts": counts, "vector_spaces": vectors})
    return BackupReport(Path(out), project["name"], counts, Path(out).stat().st_size)


# --- reading --------------------------------------------------------------------------------


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
    columns = TABLES[table].c
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
    if "classes" in metrics:
        metrics["classes"] = [classes.get(int(c), c) for c in metrics["classes"]]
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
        for batch in _batches(_read_rows(self.zf, "annotation")):
            _insert("annotation", [{
                **row, "project_id": project_id, "image_id": self.images[row["image_id"]],
                "label_class_id": self.classes[row["label_class_id"]],
                "annotator_id": self.users.get(row["annotator_id"])} for row in batch])
            self.counts["annotation"] += len(batch)
        rounds = list(_read_rows(self.zf, "model_round"))
        for round_ in rounds:
            round_["project_id"] = project_id
            round_["metrics"] = _remap_metrics(round_["metrics"], self.classes, self.images)
            if round_["status"] in (JobStatus.QUEUED, JobStatus.RUNNING):
                round_["status"] = JobStatus.FAILED.value
                round_["message"] = "Interrupted: the backup was taken while it was running."
        _insert("model_round", rounds)
        self.counts["model_round"] = len(rounds)
        return project_id

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

    def write_files(self, project_id: int, spaces: Iterable[str], rounds: Iterable[int]) -> None:
        """The project's vectors (ids remapped) and round heads (class ids remapped)."""
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
        self.counts["heads"] = 0
        for number in rounds:
            # A round head is a pickle, as in the data directory: restore only your own backups.
            head = pickle.loads(self.zf.read(f"models/round-{number}.pkl"))
            head.classes_ = np.array([self.classes[int(c)] for c in head.classes_])
            path = head_path(project_id, number)
            self.written.append(path)
            with atomic_writer(path) as out:
                pickle.dump(head, out)
            self.counts["heads"] += 1


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
    heads = sorted(int(m[len("models/round-"):-len(".pkl")]) for m in manifest["members"]
                   if m.startswith("models/round-"))
    with zipfile.ZipFile(archive) as zf:
        restorer = _Restorer(zf, home)
        restorer.copy_blobs()
        try:
            project_id = restorer.insert_rows(name)
            restorer.write_files(project_id, manifest.get("vector_spaces", {}), heads)
            db.session.commit()
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
    return RestoreReport(name, project_id, restorer.counts, restorer.created_users)
