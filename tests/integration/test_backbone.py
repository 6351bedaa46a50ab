"""The real backbones: ImageNet predictions, embedding sanity, caching, other sources."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from labeler.embeddings import (
    Backbone,
    BackboneUnavailable,
    ImageNetHeadUnavailable,
    available_backbones,
    load_backbone,
    prepare_image,
    registry,
)
from labeler.storage import file_sha256

pytestmark = [
    pytest.mark.integration,
    # Keras' own model.save() (used by the tests to make user models) trips this under
    # NumPy 2; the library code silences it around its own saves.
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]


def stack(images: list[Image.Image], size: int = 224) -> np.ndarray:
    return np.stack([prepare_image(image, size) for image in images])


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def center_crop(image: Image.Image, keep: float = 0.7) -> Image.Image:
    w, h = image.size
    dw, dh = int(w * (1 - keep) / 2), int(h * (1 - keep) / 2)
    return image.crop((dw, dh, w - dw, h - dh))


def test_imagenet_predictions_name_what_is_in_the_photos(backbone: Backbone, photos):
    china, flower = backbone.classify(stack([photos["china"], photos["flower"]]), top=5)

    assert {"palace", "monastery"} & {name for name, _ in china}, china
    assert "daisy" in {name for name, _ in flower}, flower
    assert all(0.0 <= p <= 1.0 for _, p in china + flower)
    assert [p for _, p in china] == sorted((p for _, p in china), reverse=True)


def test_flipped_and_cropped_copies_are_nearest_to_their_original(backbone: Backbone, photos):
    names = list(photos)
    originals = [photos[n] for n in names]
    flipped = [ImageOps.mirror(image) for image in originals]
    cropped = [center_crop(image) for image in originals]

    embeddings = backbone.embed(stack(originals + flipped + cropped))

    assert embeddings.shape == (3 * len(names), 1280) and embeddings.dtype == np.float32
    base = embeddings[: len(names)]
    for variant, start in (("flipped", len(names)), ("cropped", 2 * len(names))):
        similarity = cosine(embeddings[start : start + len(names)], base)
        nearest = similarity.argmax(axis=1)
        assert list(nearest) == list(range(len(names))), (variant, similarity.round(2))


def test_embed_batches_and_dtypes_do_not_change_results(backbone: Backbone, photos):
    images = stack(list(photos.values()))

    whole = backbone.embed(images)
    in_pieces = backbone.embed(images, batch_size=4)
    as_float = backbone.embed(images.astype(np.float32), batch_size=3)

    np.testing.assert_allclose(in_pieces, whole, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(as_float, whole, rtol=1e-4, atol=1e-5)
    assert backbone.embed(images[:0]).shape == (0, 1280)
    with pytest.raises(ValueError, match="prepare_image"):
        backbone.embed(images[:, :100])


def test_second_load_comes_from_the_cache_and_matches(
    backbone: Backbone, backbone_cache: Path, photos, monkeypatch
):
    model_path, checksum_path = registry.lite0_cache_paths(backbone_cache)
    assert model_path.is_file() and checksum_path.is_file()
    assert [p.name for p in backbone_cache.iterdir() if p.name.startswith(".")] == []

    def no_conversion(source):
        raise AssertionError("the cached model should have been used")

    monkeypatch.setattr(registry, "_convert_lite", no_conversion)
    again = load_backbone("efficientnet-lite0", backbone_cache)

    assert again.spec == backbone.spec
    images = stack(list(photos.values()))
    np.testing.assert_array_equal(again.embed(images), backbone.embed(images))


@pytest.mark.parametrize("damage", ["flip-a-byte", "garbage-with-matching-checksum"])
def test_a_damaged_cache_is_detected_and_rebuilt(
    backbone: Backbone, backbone_cache: Path, photos, tmp_path, monkeypatch, damage
):
    source, source_checksum = registry.lite0_cache_paths(backbone_cache)
    model_path, checksum_path = registry.lite0_cache_paths(tmp_path)
    data = bytearray(source.read_bytes())
    if damage == "flip-a-byte":
        data[len(data) // 2] ^= 0xFF
        checksum_path.write_bytes(source_checksum.read_bytes())
    else:  # the checksum agrees, but the file is not a model: loading must not trust it
        data = bytearray(b"this is not a zip file")
        checksum_path.write_text(f"{hashlib.sha256(data).hexdigest()}  x\n")
    model_path.write_bytes(bytes(data))
    conversions = []
    convert = registry._convert_lite
    monkeypatch.setattr(registry, "_convert_lite",
                        lambda source: conversions.append(1) or convert(source))

    rebuilt = load_backbone("efficientnet-lite0", tmp_path)

    assert conversions == [1]
    assert checksum_path.read_text().split()[0] == file_sha256(model_path)
    image = stack([photos["coffee"]])
    np.testing.assert_allclose(rebuilt.embed(image), backbone.embed(image), rtol=1e-5, atol=1e-6)


def test_a_failed_cache_write_leaves_no_partial_file(tmp_path, monkeypatch, photos):
    import keras

    def full_disk(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", full_disk)

    fallback = load_backbone("efficientnet-lite0", tmp_path)

    assert list(tmp_path.iterdir()) == []  # neither the model, its checksum nor a temp file
    assert fallback.classify(stack([photos["coffee"]]), top=1)[0][0][0] == "espresso"


def test_a_user_keras_file_is_a_backbone(tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(3, activation="softmax")(pooled)
    model = keras.Model(inputs, outputs)
    path = tmp_path / "tiny.keras"
    model.save(path)
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)

    user = load_backbone(str(path), tmp_path / "cache")

    assert user.spec.name == str(path.resolve())
    assert user.spec.version == "sha256:" + file_sha256(path)[:16] + "-p2"
    assert (user.spec.input_size, user.spec.dim) == (32, 4)
    expected = keras.Model(inputs, pooled).predict(images.astype(np.float32), verbose=0)
    np.testing.assert_allclose(user.embed(images), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ImageNetHeadUnavailable, match="no ImageNet classifier"):
        user.classify(images)


def test_a_user_model_ending_in_a_feature_map_is_pooled(tmp_path):
    import keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(6, 3, name="conv")(inputs)
    outputs = keras.layers.Conv2D(2, 1, name="head")(x)
    path = tmp_path / "fcn.keras"
    keras.Model(inputs, outputs).save(path)

    user = load_backbone(str(path), tmp_path)

    assert user.spec.dim == 6
    assert user.embed(np.zeros((2, 16, 16, 3), np.uint8)).shape == (2, 6)


def test_missing_or_broken_user_files_are_explained(tmp_path):
    with pytest.raises(BackboneUnavailable, match="no model file"):
        load_backbone(str(tmp_path / "missing.keras"), tmp_path)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"nope")
    with pytest.raises(BackboneUnavailable, match="could not be loaded"):
        load_backbone(str(broken), tmp_path)


@pytest.fixture
def offline_keras_home(tmp_path, monkeypatch) -> Path:
    """An empty Keras cache, with every download attempt failing at once."""
    import keras.src.backend.config as keras_config
    import keras.src.utils.file_utils as file_utils

    keras_home = tmp_path / "keras-home"
    (keras_home / "models").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(keras_home))  # read at import

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("network blocked by the test")

    def no_socket(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_socket)
    return keras_home


def test_a_keras_application_without_weights_says_what_to_do(tmp_path, offline_keras_home):
    with pytest.raises(BackboneUnavailable) as caught:
        load_backbone("keras:mobilenetv3small", tmp_path)

    message = str(caught.value)
    expected = (
        offline_keras_home / "models" / "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    )
    assert str(expected) in message
    assert "efficientnet-lite0" in message


def test_a_keras_application_loads_from_the_keras_cache(tmp_path, offline_keras_home, monkeypatch):
    import h5py
    import keras
    import keras.src.utils.file_utils as file_utils
    from keras.src.legacy.saving import legacy_h5_format

    # Stand-in weights in Keras' cache, under the file name Keras looks for; the real
    # file's hash cannot match, so hash validation is switched off for this test.
    stand_in = keras.applications.MobileNetV3Small(
        weights=None, include_top=False, input_shape=(224, 224, 3)
    )
    fname = "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    with h5py.File(offline_keras_home / "models" / fname, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, stand_in)
    monkeypatch.setattr(file_utils, "validate_file", lambda *args, **kwargs: True)

    app = load_backbone("MobileNetV3Small", tmp_path)

    assert (app.spec.name, app.spec.input_size, app.spec.dim) == (
        "keras:MobileNetV3Small",
        224,
        576,
    )
    assert app.spec.version.startswith("k3-")
    images = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    expected = stand_in.predict(images.astype(np.float32), verbose=0).mean(axis=(1, 2))
    np.testing.assert_allclose(app.embed(images), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(
        ImageNetHeadUnavailable, match="weights_mobilenet_v3_small_224_1.0_float.h5"
    ):
        app.classify(images)


def test_unknown_names_are_explained(tmp_path):
    with pytest.raises(BackboneUnavailable, match="Unknown backbone"):
        load_backbone("alexnet-9000", tmp_path)
    with pytest.raises(BackboneUnavailable, match="no Keras application"):
        load_backbone("keras:AlexNet", tmp_path)


def test_available_backbones_exist_in_keras():
    import keras

    names = available_backbones()

    assert names[:3] == ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]
    missing = [n for n in names[3:] if not hasattr(keras.applications, n.split(":", 1)[1])]
    assert missing == []


def test_importing_embeddings_does_not_import_tensorflow():
    code = (
        "import sys, labeler.embeddings, labeler.embeddings.torch_weights\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_prepare_image_crops_the_center_square_of_any_mode():
    wide = Image.new("RGB", (300, 100), "red")
    wide.paste(Image.new("RGB", (100, 100), "blue"), (100, 0))
    transparent = Image.new("RGBA", (50, 80), (0, 0, 0, 0))
    deep = Image.fromarray(np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16))

    center = prepare_image(wide, 32)
    assert center.shape == (32, 32, 3) and center.dtype == np.float32
    assert (center[:, :, 2] > 200).all()  # only the blue middle square remains
    np.testing.assert_allclose(prepare_image(transparent, 16), 255, atol=1e-3)  # onto white
    assert 100 < prepare_image(deep, 8).mean() < 160  # 16-bit stretched, not clipped to white
    assert prepare_image(Image.new("P", (10, 10)), 4).shape == (4, 4, 3)
