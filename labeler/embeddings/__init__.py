"""Backbones: image embeddings and ImageNet classification.

This package is the only part of labeler that imports TensorFlow/Keras, and it does so
lazily, inside functions: importing it is cheap.
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probes, CPU flags) is noise on a user's terminal;
# set before TensorFlow is first imported (lazily, by this package). Users can override.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from labeler.embeddings.backbone import (  # noqa: E402
    Backbone,
    BackboneSpec,
    BackboneUnavailable,
    ImageNetHeadUnavailable,
)
from labeler.embeddings.imagenet import imagenet_class_names  # noqa: E402
from labeler.embeddings.keras_apps import DEFAULT_BACKBONE  # noqa: E402
from labeler.embeddings.registry import (  # noqa: E402
    available_backbones,
    known_identity,
    load_backbone,
    register_backbone,
)
from labeler.embeddings.resize import prepare_image  # noqa: E402

__all__ = [
    "DEFAULT_BACKBONE",
    "Backbone",
    "BackboneSpec",
    "BackboneUnavailable",
    "ImageNetHeadUnavailable",
    "available_backbones",
    "imagenet_class_names",
    "known_identity",
    "load_backbone",
    "prepare_image",
    "register_backbone",
]
