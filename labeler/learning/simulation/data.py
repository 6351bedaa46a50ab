"""Labelled data for ``labeler simulate``: a folder of class sub-folders, or two .npy files.

Every image is judged by decoding it with Pillow, never by its extension; arrays are read
with ``allow_pickle=False``. No Flask, no database, no TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labeler.errors import LabelerError
from labeler.imaging import open_image


@dataclass(frozen=True)
class FolderDataset:
    """Images of a folder-per-class dataset.

    Attributes:
        paths: Readable image files, sorted by class folder and then by path.
        labels: The class (immediate subfolder name) of each file, a ``str`` array.
        skipped: ``(path, reason)`` of files that are not readable images.
    """

    paths: list[Path]
    labels: np.ndarray
    skipped: list[tuple[Path, str]]



def _is_hidden(name: str) -> bool:
    # .DS_Store, ._resource-forks, .git: never images somebody meant to label.
    return name.startswith(".") or name == "__MACOSX"


def _unreadable_reason(path: Path) -> str | None:
    """Why Pillow cannot decode ``path`` as an accepted image, or None if it can."""
    try:
        with open_image(path.read_bytes()) as image:
            if image.format == "JPEG":
                image.draft(image.mode, (256, 256))  # validate big photos at reduced scale
            image.load()  # decode fully: a truncated file opens fine but fails here
    except Exception as exc:  # Pillow raises a zoo of exception types on damaged files
        return str(exc) or type(exc).__name__
    return None


def load_folder_dataset(folder: str | os.PathLike[str]) -> FolderDataset:
    """Read a folder-per-class dataset: ``folder/<class>/**/<image>``.

    Every file is judged by decoding it with Pillow, never by its extension; files that
    cannot be decoded, and files lying directly in ``folder``, are skipped and reported in
    ``skipped``. Hidden files and folders are ignored.

    Args:
        folder: The dataset root; each immediate subfolder is one class.

    Returns:
        The readable images, their classes and the skipped files.

    Raises:
        LabelerError: ``folder`` is missing or has fewer than two classes with images.
    """
    root = Path(folder)
    if not root.is_dir():
        raise LabelerError(f"{root} is not a folder; pass a folder with one subfolder per class.")
    paths: list[Path] = []
    labels: list[str] = []
    skipped: list[tuple[Path, str]] = []
    for entry in sorted(root.iterdir()):
        if _is_hidden(entry.name):
            continue
        if not entry.is_dir():
            skipped.append((entry, "not inside a class subfolder"))
            continue
        for path in sorted(entry.rglob("*")):
            if not path.is_file() or any(_is_hidden(p) for p in path.relative_to(root).parts):
                continue
            reason = _unreadable_reason(path)
            if reason is None:
                paths.append(path)
                labels.append(entry.name)
            else:
                skipped.append((path, reason))
    if len(set(labels)) < 2:
        raise LabelerError(
            f"{root} has images in {len(set(labels))} class subfolder(s); a simulation needs "
            "at least two subfolders (one per class) containing images."
        )
    return FolderDataset(paths, np.asarray(labels, dtype=str), skipped)


def load_arrays(
    embeddings_npy: str | os.PathLike[str], labels_npy: str | os.PathLike[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Load precomputed embeddings and their labels from ``.npy`` files.

    Args:
        embeddings_npy: A 2-D numeric array, one row per image.
        labels_npy: A 1-D array of integer or string labels, one per row.

    Returns:
        ``(X, y)``: embeddings as float32 and the labels as stored.

    Raises:
        LabelerError: A file is missing or unreadable, has the wrong shape or type, or the
            two disagree in length.
    """
    X = load_npy(embeddings_npy, "embeddings")
    y = load_npy(labels_npy, "labels")
    if X.ndim != 2 or X.dtype.kind not in "fiu" or X.shape[0] == 0:
        raise LabelerError(
            f"{embeddings_npy} holds a {X.dtype} array of shape {X.shape}; the embeddings "
            "must be a non-empty 2-D numeric array (one row per image)."
        )
    if not np.isfinite(X).all():
        raise LabelerError(f"{embeddings_npy} contains NaN or infinite values; recompute them.")
    if y.ndim != 1 or y.dtype.kind not in "iuUS":
        raise LabelerError(
            f"{labels_npy} holds a {y.dtype} array of shape {y.shape}; the labels must be a "
            "1-D array of integers or strings, e.g. np.save(path, np.asarray(labels, dtype=str))."
        )
    if len(y) != len(X):
        raise LabelerError(
            f"{embeddings_npy} has {len(X)} rows but {labels_npy} has {len(y)} labels; "
            "pass one label per embedding row, in the same order."
        )
    return X.astype(np.float32, copy=False), y


def load_npy(path: str | os.PathLike[str], what: str) -> np.ndarray:
    """A ``.npy`` array read without pickles, or a LabelerError that says what to do."""
    try:
        # allow_pickle=False: an .npy from elsewhere must not be able to run code.
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise LabelerError(f"There is no {what} file at {path}; check the path.") from exc
    except (OSError, ValueError) as exc:
        raise LabelerError(
            f"{path} could not be read as a .npy array of {what} ({exc}). Save it with "
            "numpy.save, as numbers or strings (not Python objects)."
        ) from exc
    if not isinstance(array, np.ndarray):  # an .npz archive loads as a mapping
        raise LabelerError(f"{path} is an .npz archive; save the {what} alone with numpy.save.")
    return array
