"""Export the trained classifier as one self-contained Keras ``.keras`` file.

The file holds the whole path from a raw RGB image to class probabilities: resizing (shorter
side to the backbone's input size, centre crop: the very layer the app's embedding pipeline
resizes with, `labeler.embeddings.resize`), the backbone with its preprocessing, and the
latest round's head. The graph and its inputs and outputs are described in
:mod:`labeler.embeddings.export_graph`; this module picks the round, its head and class
names, and writes the file.

TensorFlow is imported only once a project is known to have a trained head, so the
"train first" error is instant.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from .embeddings.export_graph import UnexportableHead, classifier_model, tag_model
from .errors import LabelerError
from .extensions import db
from .models import LabelClass, ModelRound, Project
from .project_vectors import get_backbone, project_backbone_name
from .storage import atomic_writer


@dataclass(frozen=True)
class ExportedModel:
    """What `export_model` wrote: the file and the round whose head it holds."""

    path: Path
    round_number: int
    n_labels: int
    accuracy: float | None  # cross-validated; None when the round could not measure it

    def __str__(self) -> str:
        measured = (f"cross-validated accuracy {self.accuracy:.1%}" if self.accuracy is not None
                    else "accuracy not measured yet")
        return (f"Exported round {self.round_number} (trained on {self.n_labels} labels, "
                f"{measured}) to {self.path}")


def _trained_round(project: Project) -> tuple[ModelRound, Any]:
    """The project's active round and its head, or a LabelerError saying how to get one."""
    from .rounds import latest_round, load_head

    round_ = latest_round(project)
    head = load_head(project, round_) if round_ is not None else None
    if round_ is None or head is None:
        raise LabelerError(
            f"Project {project.name!r} has no trained model to export. Train a round first: "
            "label a few images of at least two classes, then `labeler retrain`."
        )
    return round_, head


def _class_names(project: Project, class_ids: np.ndarray) -> list[str]:
    """The names of the head's classes, in its column order."""
    by_id = dict(db.session.execute(
        select(LabelClass.id, LabelClass.name).where(LabelClass.project_id == project.id)).all())
    missing = [int(c) for c in class_ids if int(c) not in by_id]
    if missing:
        raise LabelerError(
            f"The trained model of project {project.name!r} refers to classes that no longer "
            f"exist (ids {missing}); run `labeler retrain` and export again.")
    return [by_id[int(c)] for c in class_ids]


def build_export_model(project: Project) -> Any:
    """The exported classifier as an in-memory ``keras.Model`` (see the module docstring).

    Args:
        project: A project whose latest successful round trained a head.

    Returns:
        The ``keras.Model``; its ``name`` is derived from the project's name.

    Raises:
        LabelerError: The project has no trained round, or its head is of an unknown kind.
    """
    return _build(project, _trained_round(project)[1])


def _build(project: Project, head: Any) -> Any:
    tag_head = hasattr(head, "tags_")  # a multi-label project's: columns are tag ids
    names = _class_names(project, np.asarray(head.tags_ if tag_head else head.classes_))
    backbone = get_backbone(project_backbone_name(project))
    safe = "".join(c if c.isalnum() else "_" for c in project.name)
    try:
        if tag_head:  # sigmoid probabilities, decisions at the thresholds, tag names
            return tag_model(backbone, head, names, name=f"labeler_{safe}")
        return classifier_model(backbone, head, names, name=f"labeler_{safe}")
    except UnexportableHead:
        raise LabelerError(
            f"The trained head of project {project.name!r} ({type(head).__name__}) cannot be "
            "exported as a Keras model; choose the logistic or keras_dense head and retrain."
        ) from None


def export_model(project: Project, out_path: Path) -> ExportedModel:
    """Write the project's trained classifier as one ``.keras`` file.

    The file is written to a temporary name in the target folder and moved into place, so
    ``out_path`` is either the previous file or the complete new one, never half-written.

    Args:
        project: A project whose latest successful round trained a head.
        out_path: Where to write; Keras requires the ``.keras`` suffix.

    Returns:
        The file and the round it holds; ``str()`` of it is the sentence the CLI prints.

    Raises:
        LabelerError: No trained round yet, or ``out_path`` does not end in ``.keras``.
    """
    out_path = Path(out_path)
    if out_path.suffix != ".keras":
        raise LabelerError(f"A Keras model file must end in .keras; got {out_path.name!r}.")
    round_, head = _trained_round(project)
    model = _build(project, head)
    # Keras insists on the .keras suffix, so the temporary name ends with it too.
    with atomic_writer(out_path, suffix=".keras") as handle, warnings.catch_warnings():
        # Keras 3.15's saver calls np.array() on TF variables, which NumPy 2 flags once per
        # weight: harmless noise.
        warnings.filterwarnings(
            "ignore", "__array__ implementation doesn't accept", DeprecationWarning)
        model.save(handle.name)
    return ExportedModel(out_path, round_.number, round_.n_labels,
                         round_.metrics.get("accuracy"))
