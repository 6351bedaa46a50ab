"""original_name relative to what was imported, not the server's absolute path

Imports of folders and zips by the CLI or a job stored each image's ``original_name`` as
the path the file had on the server (``/srv/photos/holiday/beach.jpg``, or
``/srv/up/holiday.zip!beach.jpg`` for a zip's entry); annotators and exports saw it. The
importer now names files relative to what was imported (``holiday/beach.jpg``,
``holiday.zip!beach.jpg``). This revision rewrites the rows stored before.

Which rows: a name is a server path when its file part (before ``.zip!`` for a zip's
entry) is absolute (``/…``, ``C:\\…``, ``\\\\server\\…``) or starts with ``..`` (relative to
the directory the CLI ran in). Other names (uploads, the demo, ``holiday/…`` imports run
from the folder's parent) are left as they are.

The rule. Which folder an import was given is not recorded, so it is inferred per import
batch: a batch is a run of a project's images, in id (import) order, whose names are all
server paths and whose ``created_at`` are at most 10 minutes apart (an import commits
every 256 files; an upload or a later import in between starts a new batch). Then:

- one file in the batch (a single image, or the entries of one zip): its base name
  (``beach.jpg``, ``holiday.zip!beach.jpg``);
- several files: the path below the deepest folder holding all of them, after that
  folder's own name (``holiday/2024/beach.jpg``), which is what importing that folder
  gives now;
- when the only folder holding them all is the file system's root (files from unrelated
  places), each file's base name instead, so no server path survives.

Wrongly inferred batches can only shorten a name (split) or add the name of one common
folder (merged), never bring back an absolute path. A zip entry's own path is kept.

Downgrade leaves the names as they are: the server paths were never needed (the files
are stored by content hash) and are not kept anywhere.

Revision ID: 7d3a9c51e2b8
Revises: e4c81b6f0a27
Create Date: 2026-12-03 14:00:00.000000

"""
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7d3a9c51e2b8'
down_revision = 'e4c81b6f0a27'
branch_labels = None
depends_on = None

BATCH_GAP = timedelta(minutes=10)
ROWS_PER_READ = 5000
MAX_NAME = 1024  # the column's length; the importer keeps a long name's end
_WINDOWS_ABSOLUTE = re.compile(r"^([A-Za-z]:[\\/]|\\\\)")
_ZIP_ENTRY = re.compile(r"\.zip!", re.IGNORECASE)

image = sa.table(
    "image",
    sa.column("id", sa.Integer),
    sa.column("project_id", sa.Integer),
    sa.column("original_name", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def split_server_path(name: str) -> tuple[tuple[str, ...], str] | None:
    """(folders and file of the server path, ``!entry`` or ""), or None when ``name`` is
    not a server path."""
    match = _ZIP_ENTRY.search(name)
    file_part, entry = (name[:match.end() - 1], name[match.end() - 1:]) if match else (name, "")
    if _WINDOWS_ABSOLUTE.match(file_part):
        file_part = file_part.replace("\\", "/")
        file_part = file_part[2:] if file_part[1] == ":" else file_part
    elif not (file_part.startswith("/") or file_part.split("/", 1)[0] == ".."):
        return None
    parts = tuple(p for p in PurePosixPath(file_part).parts if p.strip("/") not in ("", "..", "."))
    return (parts, entry) if parts else None


@dataclass  # alembic loads this module outside sys.modules: no string annotations here
class Batch:
    """One inferred import: its project, id range, the files' common folder, file count."""

    project_id: int
    first_id: int
    last_id: int
    last_at: object
    folder: tuple[str, ...]  # common folder of the files so far
    first_file: tuple[str, ...]
    several_files: bool = False

    def add(self, image_id: int, created_at: object, parts: tuple[str, ...]) -> None:
        self.last_id, self.last_at = image_id, created_at
        if parts != self.first_file:
            self.several_files = True
        common = 0
        for mine, theirs in zip(self.folder, parts[:-1], strict=False):
            if mine != theirs:
                break
            common += 1
        self.folder = self.folder[:common]

    def new_name(self, parts: tuple[str, ...], entry: str) -> str:
        if self.several_files and self.folder:
            relative = parts[len(self.folder) - 1:]  # keeps the common folder's own name
        else:
            relative = parts[-1:]
        return ("/".join(relative) + entry)[-MAX_NAME:]


def _close_gap(batch: Batch | None, created_at: object) -> bool:
    """True when ``created_at`` is too far from the batch's last image to belong to it."""
    if batch is None or created_at is None or batch.last_at is None:
        return batch is None
    return abs(created_at - batch.last_at) > BATCH_GAP


def find_batches(connection: sa.Connection) -> list[Batch]:
    """Every inferred import batch of server paths, from one pass over the images."""
    done: list[Batch] = []
    open_batches: dict[int, Batch] = {}
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(image.c.id, image.c.project_id, image.c.original_name,
                      image.c.created_at)
            .where(image.c.id > last_id).order_by(image.c.id).limit(ROWS_PER_READ)).all()
        if not rows:
            break
        for image_id, project_id, name, created_at in rows:
            split = split_server_path(name or "")
            batch = open_batches.get(project_id)
            if split is None or _close_gap(batch, created_at):
                if batch is not None:
                    done.append(open_batches.pop(project_id))
                if split is None:
                    continue
                open_batches[project_id] = Batch(project_id, image_id, image_id, created_at,
                                                 split[0][:-1], split[0])
            else:
                batch.add(image_id, created_at, split[0])
        last_id = rows[-1][0]
    return done + list(open_batches.values())


def rewrite(connection: sa.Connection, batch: Batch) -> None:
    """Give the batch's images their relative names, a few thousand rows per statement."""
    update = (image.update().where(image.c.id == sa.bindparam("row_id"))
              .values(original_name=sa.bindparam("new_name")))
    after = batch.first_id - 1
    while True:
        rows = connection.execute(
            sa.select(image.c.id, image.c.original_name)
            .where(image.c.project_id == batch.project_id, image.c.id > after,
                   image.c.id <= batch.last_id)
            .order_by(image.c.id).limit(ROWS_PER_READ)).all()
        if not rows:
            return
        changes = []
        for image_id, name in rows:
            split = split_server_path(name or "")
            if split is not None:
                changes.append({"row_id": image_id, "new_name": batch.new_name(*split)})
        if changes:
            connection.execute(update, changes)
        after = rows[-1][0]


def upgrade():
    connection = op.get_bind()
    for batch in find_batches(connection):
        rewrite(connection, batch)


def downgrade():
    pass  # the server paths are gone on purpose (see the docstring)
