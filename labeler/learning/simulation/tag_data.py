"""Multi-label data for ``labeler simulate``: an N×T 0/1 ``.npy``, or a CSV of file and tags.

The CSV has a header with a file column (``file_name`` as the CSV export writes it,
``filename``, ``file``, ``name`` or ``image``) and a tag column (``labels`` as the export
writes it, or ``tags``) whose tags are joined by ``;``; an empty cell is the empty tag set.
Arrays are read with ``allow_pickle=False``. No Flask, no database, no TensorFlow.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from labeler.errors import LabelerError

from .data import load_npy

FILE_COLUMNS = ("file_name", "filename", "file", "name", "image")
TAG_COLUMNS = ("labels", "tags")
TAG_SEPARATOR = ";"


def load_tag_arrays(labels_npy: str | os.PathLike[str], n_rows: int) -> np.ndarray:
    """The 0/1 tag matrix of ``labels_npy`` (shape ``(n_rows, n_tags)``), as uint8.

    Raises:
        LabelerError: unreadable, not 2-D, not 0/1, or not one row per embedding.
    """
    Y = load_npy(labels_npy, "labels")
    if Y.ndim != 2 or Y.shape[1] == 0 or Y.dtype.kind not in "biuf":
        raise LabelerError(f"{labels_npy} holds a {Y.dtype} array of shape {Y.shape}; "
                           "multi-label labels must be a 2-D 0/1 array (images × tags).")
    if Y.size and not np.isin(Y, (0, 1)).all():
        raise LabelerError(f"{labels_npy} holds values other than 0 and 1; save 1 where an "
                           "image has a tag and 0 where it has not.")
    if len(Y) != n_rows:
        raise LabelerError(f"The embeddings have {n_rows} rows but {labels_npy} has {len(Y)}; "
                           "pass one row of tags per embedding row, in the same order.")
    return Y.astype(np.uint8)


def _column(header: list[str], wanted: tuple[str, ...]) -> str | None:
    lowered = {name.strip().lower(): name for name in header}
    return next((lowered[c] for c in wanted if c in lowered), None)


def load_tag_csv(csv_path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray, list[str]]:
    """The files, 0/1 tag matrix and tag names (sorted) of a CSV of file,tags.

    Raises:
        LabelerError: unreadable, no header with a file and a tag column, or no rows.
    """
    path = Path(csv_path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            file_column, tag_column = _column(header, FILE_COLUMNS), _column(header, TAG_COLUMNS)
            if file_column is None or tag_column is None:
                raise LabelerError(
                    f"{path} needs a header with a file column ({', '.join(FILE_COLUMNS)}) and "
                    f"a tag column ({' or '.join(TAG_COLUMNS)}) of tags joined by "
                    f"'{TAG_SEPARATOR}'; it has {header}.")
            rows = [(row[file_column] or "", row[tag_column] or "") for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelerError(f"{path} could not be read as a UTF-8 CSV file ({exc}).") from exc
    if not rows:
        raise LabelerError(f"{path} has no rows; add one row per image (file,tags).")
    sets = [{tag.strip() for tag in cell.split(TAG_SEPARATOR) if tag.strip()}
            for _, cell in rows]
    names = sorted(set().union(*sets))
    if not names:
        raise LabelerError(f"No image in {path} has a tag; a simulation needs tagged images.")
    column = {name: t for t, name in enumerate(names)}
    Y = np.zeros((len(rows), len(names)), dtype=np.uint8)
    for i, tags in enumerate(sets):
        Y[i, [column[tag] for tag in tags]] = 1
    return [file.strip() for file, _ in rows], Y, names
