"""Backbones: image embeddings and ImageNet classification.

This package is the only part of labeler that imports TensorFlow/Keras, and it does so
lazily, inside functions: importing it is cheap.
"""

from labeler.embeddings.backbone import (
    Backbone,
    BackboneSpec,
    BackboneUnavailable,
    ImageNetHeadUnavailable,
)
from labeler.embeddings.imagenet import imagenet_class_names
from labeler.embeddings.images import prepare_image
from labeler.embeddings.keras_apps import DEFAULT_BACKBONE
from labeler.embeddings.registry import available_backbones, load_backbone

__all__ = [
    "DEFAULT_BACKBONE",
    "Backbone",
    "BackboneSpec",
    "BackboneUnavailable",
    "ImageNetHeadUnavailable",
    "available_backbones",
    "imagenet_class_names",
    "load_backbone",
    "prepare_image",
]
