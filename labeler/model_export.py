"""Export the trained classifier as one self-contained Keras ``.keras`` file.

The file holds the whole path from a raw RGB image to class probabilities: resizing (shorter
side to the backbone's input size, centre crop: the very layer the app's embedding pipeline
resizes with, `labeler.embeddings.resize`), the backbone with its preprocessing, and the
latest round's head. It is built only from
built-in Keras layers and operations (no ``Lambda``, no custom objects), so a fresh Python
with nothing but TensorFlow loads it with ``keras.models.load_model(path)``, safe mode on.

The model takes a float batch ``(N, H, W, 3)`` of RGB values in 0..255 (any ``H`` and ``W``)
and returns a dict: ``"probabilities"`` ``(N, n_classes)``, columns in the order of the class
names, and ``"label"`` ``(N,)``, the most probable class name as a string. The class names
themselves are the vocabulary of the final ``StringLookup`` layer (named ``"label"``):
``model.get_layer("label").get_vocabulary()``.

TensorFlow is imported only once a project is known to have a trained head, so the
"train first" error is instant.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from .errors import LabelerError
from .extensions import db
from .models import LabelClass, ModelRound, Project
from .storage import atomic_writer

if TYPE_CHECKING:
    import keras

#: Names of the exported model's outputs and of the layer whose vocabulary holds the classes.
PROBABILITIES = "probabilities"
LABEL = "label"


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
    from .training import latest_round, load_head

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


def _logistic_dense(head: Any) -> keras.layers.Dense:
    """A softmax Dense layer computing exactly the LogisticHead's probabilities.

    The head's weights already include the folded standardisation. For two classes
    scikit-learn keeps one row, the logit ``z`` of ``classes_[1]``, and the head returns
    ``[sigmoid(-z), sigmoid(z)]``; softmax over ``[-z/2, z/2]`` is the same pair, so a
    single softmax layer serves both cases.
    """
    import keras

    coef = np.asarray(head.coef_, dtype=np.float64)
    intercept = np.asarray(head.intercept_, dtype=np.float64)
    if coef.shape[0] == 1:
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    dense = keras.layers.Dense(coef.shape[0], activation="softmax", name=PROBABILITIES)
    dense.build((None, coef.shape[1]))
    dense.set_weights([coef.T.astype(np.float32), intercept.astype(np.float32)])
    return dense


def build_export_model(project: Project) -> keras.Model:
    """The exported classifier as an in-memory ``keras.Model`` (see the module docstring).

    Args:
        project: A project whose latest successful round trained a head.

    Returns:
        The model; its ``name`` is derived from the project's name.

    Raises:
        LabelerError: The project has no trained round, or its head is of an unknown kind.
    """
    return _build(project, _trained_round(project)[1])


def _build(project: Project, head: Any) -> keras.Model:
    names = _class_names(project, np.asarray(head.classes_))

    import keras

    from .embedder import get_backbone, project_backbone_name
    from .embeddings.resize import resize_layer

    backbone = get_backbone(project_backbone_name(project))
    size = backbone.spec.input_size
    images = keras.Input(shape=(None, None, 3), dtype="float32", name="images")
    resized = resize_layer(size)(images)
    features = backbone.feature_model(resized)
    if hasattr(head, "coef_"):  # LogisticHead
        probabilities = _logistic_dense(head)(features)
    elif hasattr(head, "model_"):  # KerasDenseHead: normalisation + softmax, as fitted
        probabilities = keras.layers.Identity(name=PROBABILITIES)(head.model_(features))
    else:
        raise LabelerError(
            f"The trained head of project {project.name!r} ({type(head).__name__}) cannot be "
            "exported as a Keras model; choose the logistic or keras_dense head and retrain.")
    best = keras.ops.argmax(probabilities, axis=-1)
    label = keras.layers.StringLookup(vocabulary=names, invert=True, num_oov_indices=0,
                                      name=LABEL)(best)
    safe = "".join(c if c.isalnum() else "_" for c in project.name)
    return keras.Model(images, {PROBABILITIES: probabilities, LABEL: label},
                       name=f"labeler_{safe}")


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
