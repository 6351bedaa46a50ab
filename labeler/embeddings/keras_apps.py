"""Backbones from ``keras.applications``, with their ImageNet weights from the Keras cache.

Names are ``keras:<Application>`` (e.g. ``keras:ResNet50``); the ``keras:`` prefix is
optional and matching is case-insensitive. Weights come from Keras' own cache
(``$KERAS_HOME/models``, by default ``~/.keras/models``); where the machine has network
access Keras downloads them there on first use.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from labeler.embeddings.backbone import (
    Backbone,
    BackboneSpec,
    BackboneUnavailable,
    ImageNetHeadUnavailable,
)
from labeler.embeddings.preprocessing import with_preprocessing

if TYPE_CHECKING:
    import keras

PREFIX = "keras:"
DEFAULT_BACKBONE = "efficientnet-lite0"

# Listed here so `available_backbones()` need not import TensorFlow; `resolve` also
# accepts any other application the installed Keras has.
KNOWN_APPLICATIONS: tuple[str, ...] = (
    "ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge",
    "DenseNet121", "DenseNet169", "DenseNet201",
    "EfficientNetB0", "EfficientNetB1", "EfficientNetB2", "EfficientNetB3",
    "EfficientNetB4", "EfficientNetB5", "EfficientNetB6", "EfficientNetB7",
    "EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3",
    "EfficientNetV2S", "EfficientNetV2M", "EfficientNetV2L",
    "InceptionResNetV2", "InceptionV3",
    "MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large",
    "NASNetMobile", "NASNetLarge",
    "ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2",
    "VGG16", "VGG19", "Xception",
)  # fmt: skip

# The resolution each application was trained at; 224 for all others.
_INPUT_SIZES = {
    "InceptionV3": 299, "InceptionResNetV2": 299, "Xception": 299, "NASNetLarge": 331,
    "EfficientNetB1": 240, "EfficientNetB2": 260, "EfficientNetB3": 300,
    "EfficientNetB4": 380, "EfficientNetB5": 456, "EfficientNetB6": 528,
    "EfficientNetB7": 600, "EfficientNetV2B1": 240, "EfficientNetV2B2": 260,
    "EfficientNetV2B3": 300, "EfficientNetV2S": 384, "EfficientNetV2M": 480,
    "EfficientNetV2L": 480,
}  # fmt: skip


def is_application_name(name: str) -> bool:
    """Whether ``name`` asks for a Keras application (without importing Keras)."""
    bare = name[len(PREFIX) :] if name.lower().startswith(PREFIX) else name
    return name.lower().startswith(PREFIX) or bare.lower() in {
        a.lower() for a in KNOWN_APPLICATIONS
    }


def _resolve(name: str) -> tuple[str, Callable[..., keras.Model]]:
    import keras

    bare = name[len(PREFIX) :] if name.lower().startswith(PREFIX) else name
    found = {
        attr.lower(): attr
        for attr in dir(keras.applications)
        if attr[:1].isupper() and callable(getattr(keras.applications, attr))
    }
    attr = found.get(bare.lower())
    if attr is None:
        raise BackboneUnavailable(
            f"There is no Keras application called {bare!r}. Use one of "
            f"{', '.join(PREFIX + a for a in sorted(found.values()))}, "
            f"or the default backbone {DEFAULT_BACKBONE!r}."
        )
    return attr, getattr(keras.applications, attr)


def keras_models_dir() -> str:
    """Where Keras looks for (and downloads) application weights, as `get_file` does."""
    try:
        from keras.src.backend.config import keras_home

        base = os.path.expanduser(keras_home())
    except ImportError:  # private module moved: fall back to Keras' documented rule
        base = os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras"))
    if not os.access(base, os.W_OK):  # Keras' own fallback, also taken if base is missing
        base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return os.path.join(base, "models")


def _weights_help(app: str, error: BaseException) -> str:
    models_dir = keras_models_dir()
    match = re.search(r"(https?://\S+?\.h5)", str(error))
    if match:
        url = match.group(1)
        where = (
            f"download {url} on a machine with network access and place it at "
            f"{os.path.join(models_dir, url.rsplit('/', 1)[-1])}"
        )
    else:
        where = f"place its weights file in {models_dir} (Keras' weights cache)"
    return (
        f"The ImageNet weights of Keras application {app} are not on this machine and "
        f"could not be downloaded ({error}). To use it, {where}; or use the default "
        f"backbone {DEFAULT_BACKBONE!r}, which needs no download."
    )


def _with_preprocessing(
    constructor: Callable[..., keras.Model], size: int, name: str, **kwargs: Any
) -> keras.Model:
    """The application wrapped so that it takes RGB 0..255 like every backbone here."""
    import keras

    # Each application module has the preprocess_input it was trained with; applied to a
    # symbolic input it becomes part of the graph and is saved with the model.
    preprocess = importlib.import_module(constructor.__module__).preprocess_input
    base = constructor(weights="imagenet", input_shape=(size, size, 3), **kwargs)
    inputs = keras.Input((size, size, 3), dtype="float32", name="image")
    return keras.Model(inputs, base(preprocess(inputs)), name=name)


def _weights_digest(model: keras.Model) -> str:
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(weight.path.encode())
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()


def load_application(name: str) -> Backbone:
    """Load a ``keras.applications`` model as a backbone.

    The features are the application's globally average-pooled last feature map
    (``include_top=False, pooling="avg"``); its ImageNet classifier (a second weights
    file) is loaded only when `Backbone.classify` is first called.

    Args:
        name: ``keras:<Application>``, or the bare application name; any case.

    Returns:
        The backbone. Its spec version is ``k<major>-`` plus a digest of the weights and
        the preprocessing version, so different weights, architecture or preprocessing
        give different versions.

    Raises:
        BackboneUnavailable: No such application, or its weights are neither cached nor
            downloadable; the message says where to put the file.
    """
    import keras

    app, constructor = _resolve(name)
    size = _INPUT_SIZES.get(app, 224)
    try:
        feature_model = _with_preprocessing(
            constructor, size, f"{app}_features", include_top=False, pooling="avg"
        )
    except Exception as exc:  # Keras raises bare Exception for failed downloads
        raise BackboneUnavailable(_weights_help(app, exc)) from exc

    def imagenet_model() -> keras.Model:
        try:
            return _with_preprocessing(constructor, size, f"{app}_imagenet")
        except Exception as exc:
            raise ImageNetHeadUnavailable(_weights_help(f"{app} (with classifier)", exc)) from exc

    major = keras.__version__.split(".", 1)[0]
    spec = BackboneSpec(
        name=PREFIX + app,
        version=with_preprocessing(f"k{major}-{_weights_digest(feature_model)[:12]}"),
        input_size=size,
        dim=int(feature_model.output_shape[-1]),
    )
    return Backbone(spec, feature_model, imagenet_model)
