"""The graph of the exported classifier: resize, backbone, head, class name, in Keras.

Built only from built-in Keras layers and operations (no ``Lambda``, no custom objects), so
a fresh Python with nothing but TensorFlow loads the saved file with
``keras.models.load_model(path)``, safe mode on. ``labeler.model_export`` chooses the round
and writes the file; this module only builds the model, and imports Keras lazily.

The model takes a float batch ``(N, H, W, 3)`` of RGB values in 0..255 (any ``H`` and ``W``)
and returns a dict: ``"probabilities"`` ``(N, n_classes)``, columns in the order of the class
names, and ``"label"`` ``(N,)``, the most probable class name as a string. The class names
are the vocabulary of the final ``StringLookup`` layer (named ``"label"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from labeler.embeddings.resize import resize_layer

if TYPE_CHECKING:
    import keras

#: Names of the exported model's outputs and of the layer whose vocabulary holds the classes.
PROBABILITIES = "probabilities"
LABEL = "label"


class UnexportableHead(TypeError):
    """The head is of a kind that has no Keras form (neither logistic nor Keras dense)."""


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


def classifier_model(backbone: Any, head: Any, class_names: Sequence[str],
                     name: str) -> keras.Model:
    """Resize, then the backbone's features, then the head, then the class name.

    Args:
        backbone: a loaded ``Backbone`` (its ``feature_model`` and ``spec.input_size``).
        head: a fitted ``LogisticHead`` or ``KerasDenseHead``.
        class_names: the name of each of the head's classes, in its column order.
        name: the model's name.

    Raises:
        UnexportableHead: the head has no Keras form.
    """
    import keras

    images = keras.Input(shape=(None, None, 3), dtype="float32", name="images")
    resized = resize_layer(backbone.spec.input_size)(images)
    features = backbone.feature_model(resized)
    if hasattr(head, "coef_"):  # LogisticHead
        probabilities = _logistic_dense(head)(features)
    elif hasattr(head, "model_"):  # KerasDenseHead: normalisation + softmax, as fitted
        probabilities = keras.layers.Identity(name=PROBABILITIES)(head.model_(features))
    else:
        raise UnexportableHead(type(head).__name__)
    best = keras.ops.argmax(probabilities, axis=-1)
    label = keras.layers.StringLookup(vocabulary=list(class_names), invert=True,
                                      num_oov_indices=0, name=LABEL)(best)
    return keras.Model(images, {PROBABILITIES: probabilities, LABEL: label}, name=name)


#: Outputs of an exported tag (multi-label) model, and the layers that hold its tag names
#: and thresholds.
DECISIONS = "decisions"
TAGS = "tags"
THRESHOLDS = "thresholds"


def _dense(units: int, kernel: np.ndarray, bias: np.ndarray | None, name: str,
           activation: str | None = None) -> keras.layers.Dense:
    """A built Dense layer with the given float32 weights."""
    import keras

    dense = keras.layers.Dense(units, activation=activation, use_bias=bias is not None,
                               name=name)
    dense.build((None, kernel.shape[0]))
    weights = [kernel.astype(np.float32)]
    dense.set_weights(weights if bias is None else [*weights, bias.astype(np.float32)])
    return dense


def tag_model(backbone: Any, head: Any, tag_names: Sequence[str], name: str) -> keras.Model:
    """Resize, the backbone's features, one sigmoid Dense layer, and each tag's decision.

    The model returns a dict of three ``(N, n_tags)`` outputs, columns in the order of
    ``tag_names``: ``"probabilities"`` (sigmoid, the head's per-tag probabilities),
    ``"decisions"`` (int32 1 where the probability reaches the tag's threshold, else 0) and
    ``"tags"`` (the tag's name where decided, ``""`` elsewhere). The thresholds are the
    negated bias of the ``"thresholds"`` layer (``probability - threshold >= 0``); the tag
    names are the vocabulary of the ``"tags"`` ``StringLookup`` layer after its mask ``""``.

    Args:
        backbone: a loaded ``Backbone`` (its ``feature_model`` and ``spec.input_size``).
        head: a fitted :class:`~labeler.learning.tag_heads.TagHeads` (``coef_``,
            ``intercept_``, ``thresholds_``).
        tag_names: the name of each tag, in the head's column order.
        name: the model's name.

    Raises:
        UnexportableHead: the head is not a tag head.
        ValueError: the names do not match the head's tags.
    """
    import keras

    if not (hasattr(head, "coef_") and hasattr(head, "thresholds_")):
        raise UnexportableHead(type(head).__name__)
    coef = np.asarray(head.coef_, dtype=np.float64)
    n_tags = coef.shape[0]
    if len(tag_names) != n_tags:
        raise ValueError(f"{len(tag_names)} tag names for a head of {n_tags} tags.")
    images = keras.Input(shape=(None, None, 3), dtype="float32", name="images")
    resized = resize_layer(backbone.spec.input_size)(images)
    features = backbone.feature_model(resized)
    probabilities = _dense(n_tags, coef.T, np.asarray(head.intercept_), PROBABILITIES,
                           activation="sigmoid")(features)
    # p - t through an identity kernel (exact in float32), so the thresholds are weights of
    # a built-in layer: no Lambda, no constant tensors outside a layer.
    margin = _dense(n_tags, np.eye(n_tags), -np.asarray(head.thresholds_, dtype=np.float64),
                    THRESHOLDS)(probabilities)
    decisions = keras.ops.cast(keras.ops.greater_equal(margin, 0.0), "int32")
    # Tag t's decision times t + 1 is its index in the lookup below; 0 is the mask, "".
    positions = _dense(n_tags, np.diag(np.arange(1.0, n_tags + 1.0)), None, "tag_positions")(
        keras.ops.cast(decisions, "float32"))
    tags = keras.layers.StringLookup(vocabulary=list(tag_names), invert=True, num_oov_indices=0,
                                     mask_token="", name=TAGS)(keras.ops.cast(positions, "int64"))
    return keras.Model(images, {PROBABILITIES: probabilities, DECISIONS: decisions, TAGS: tags},
                       name=name)
