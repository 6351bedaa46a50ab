"""Project snapshots: ``labeler backup`` writes one archive (``labeler.restore`` reads it).

The archive is a zip (stored, not compressed: images already are) holding::

    manifest.json               format, versions, project, counts, sha256 of every member
    rows/<table>.jsonl          the project's rows, one JSON object a line
    blobs/<kind>/ab/<sha>.<ext> originals, thumbnails and display renditions
    vectors/<space>.{f16,ids,json}  the embedding matrix of each space, image ids as stored
    models/round-<n>.npz        the fitted head of each round that has one, as plain arrays

(Format 1 archives held the heads as ``round-<n>.pkl`` pickles; restore ignores those.)

Consistency while the server runs: on SQLite the database is first copied with the online
backup API (one read transaction, so one instant) and every row is read from that copy;
elsewhere the rows are read in one REPEATABLE READ transaction. Files are copied after
that, which is safe because blobs are content-addressed (a referenced blob never changes),
vector files are append-only (rows are filtered to the images of the snapshot) and a
round's head is written before the round is marked done.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
from sqlalchemy import Connection, Table, create_engine, select
from sqlalchemy.pool import NullPool

from .config import VERSION
from .errors import LabelerError
from .extensions import db
from .models import (
    Annotation,
    AnnotationTag,
    Image,
    ImageTag,
    ImageTagScore,
    LabelClass,
    ModelRound,
    Project,
    ProjectMember,
    User,
    utcnow,
)
from .projects import get_project
from .rounds import head_path
from .storage import BlobStore, atomic_writer, data_root
from .vectors import ID_DTYPE, EmbeddingSpace, VectorStore

FORMAT = "labeler-project-backup"
# 2: round heads as plain arrays (.npz); 1 pickled them, and restore ignores those.
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
CHUNK_BYTES = 1 << 20
ROW_BATCH = 1_000  # rows per INSERT batch on restore
VECTOR_ROWS = 8_192  # vector rows copied per step: bounded memory for a 1M-row matrix
# Order matters on restore: each table's foreign keys point to tables before it.
TABLES: dict[str, Table] = {t.name: t for t in (
    Project.__table__, LabelClass.__table__, User.__table__, Image.__table__,
    Annotation.__table__, ModelRound.__table__, ProjectMember.__table__)}
USER_COLUMNS = ("id", "username", "role")  # never password hashes or tokens
#: Multi-label rows (tag sets, tag scores): no project_id, found through their annotation
#: or image; restored after TABLES. Archives written before them simply lack the members.
TAG_TABLES: dict[str, Table] = {t.name: t for t in (
    AnnotationTag.__table__, ImageTag.__table__, ImageTagScore.__table__)}



@dataclass
class BackupReport:
    """What ``backup_project`` wrote."""

    path: Path
    project: str
    counts: dict[str, int]
    size_bytes: int



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
    wanted = {"id", "sha256", "format", "number", "annotator_id", "undone_by_id",
              "user_id"}
    with archive.member(f"rows/{table}.jsonl") as write:
        for row in conn.execute(query.execution_options(yield_per=ROW_BATCH)).mappings():
            record = {k: _json_value(v) for k, v in row.items()
                      if columns is None or k in columns}
            write((json.dumps(record) + "\n").encode())
            kept.append({k: row[k] for k in wanted if k in row})
    return kept


def _write_tag_rows(archive: _ArchiveWriter, conn: Connection, name: str, table: Table,
                    project_id: int) -> int:
    """Stream one multi-label table's rows of the project; how many there were."""
    parent = TABLES["annotation" if "annotation_id" in table.c else "image"]
    key = table.c.annotation_id if "annotation_id" in table.c else table.c.image_id
    query = (select(table).where(key.in_(select(parent.c.id).where(
        parent.c.project_id == project_id))).order_by(*table.primary_key.columns))
    count = 0
    with archive.member(f"rows/{name}.jsonl") as write:
        for row in conn.execute(query.execution_options(yield_per=ROW_BATCH)).mappings():
            write((json.dumps({k: _json_value(v) for k, v in row.items()}) + "\n").encode())
            count += 1
    return count


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
            for name, table in TAG_TABLES.items():
                counts[name] = _write_tag_rows(archive, conn, name, table, project_id)
            # Whoever gave or undid a label (the history names them) or is a member.
            annotators = sorted({r[key] for r in kept["annotation"]
                                 for key in ("annotator_id", "undone_by_id")
                                 if r.get(key) is not None}
                                | {r["user_id"] for r in kept["project_member"]})
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
                archive.add_file(f"models/{path.name}", path)
                counts["heads"] += 1
        archive.close({"format": FORMAT, "format_version": FORMAT_VERSION,
                       "labeler_version": VERSION, "project": project["name"],
                       "created_at": utcnow().isoformat(), "database": db.engine.dialect.name,
                       "counts": counts, "vector_spaces": vectors})
    return BackupReport(Path(out), project["name"], counts, Path(out).stat().st_size)
