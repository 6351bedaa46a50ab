"""EfficientNet-Lite1 and Lite2, converted from their wheels: real ImageNet predictions on
real photos, and a project switched to Lite2 from the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labeler.embeddings import load_backbone, prepare_image, register_backbone

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

# Labels that name what the photo shows; a wrong conversion (a transposed kernel, a
# misplaced stride) gives confident nonsense instead.
EXPECTED_IN_TOP5 = {
    "astronaut": {"football helmet", "crash helmet", "space shuttle"},
    "coffee": {"espresso"},
    "chelsea": {"tabby cat", "Egyptian Mau", "tiger cat"},
    "china": {"palace", "monastery"},
}


@pytest.fixture(scope="module", params=["efficientnet-lite1", "efficientnet-lite2"])
def lite(request, tmp_path_factory):
    return load_backbone(request.param, tmp_path_factory.mktemp("lite-cache"))


def test_imagenet_top5_of_the_sample_photos_name_what_they_show(lite, photos):
    size = lite.spec.input_size
    names = list(EXPECTED_IN_TOP5)
    rankings = lite.classify(np.stack([prepare_image(photos[n], size) for n in names]), top=5)

    for name, ranking in zip(names, rankings, strict=True):
        assert EXPECTED_IN_TOP5[name] & {label for label, _ in ranking}, (name, ranking)
    coffee = rankings[names.index("coffee")]
    assert coffee[0][0] == "espresso" and coffee[0][1] > 0.5, coffee
    assert lite.spec.input_size == {"efficientnet-lite1": 240, "efficientnet-lite2": 260}[
        lite.spec.name]


def test_a_project_switched_to_lite2_embeds_and_classifies_with_it(
        runner, photos, tmp_path, tmp_path_factory):
    lite2 = load_backbone("efficientnet-lite2", tmp_path_factory.mktemp("lite2-cli"))
    register_backbone("efficientnet-lite2", lambda cache_dir: lite2)  # the app loads it once
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("coffee", "chelsea", "china"):
        photos[name].save(folder / f"{name}.png")
    assert runner.invoke(args=["project", "create", "p"]).exit_code == 0
    assert runner.invoke(args=["import", "p", str(folder)]).exit_code == 0

    switched = runner.invoke(args=["project", "set-backbone", "p", "efficientnet-lite2"])
    embedded = runner.invoke(args=["embed", "p"])
    classified = runner.invoke(args=["classify", "--backbone", "efficientnet-lite2",
                                     str(folder / "coffee.png")])

    assert switched.exit_code == 0, switched.output
    assert "Embedded 3 images with efficientnet-lite2 (version 1-p2)" in embedded.output
    from labeler.project_vectors import current_vectors
    from labeler.projects import get_project

    store = current_vectors(get_project("p"))
    assert (store.space.backbone, store.space.input_size, store.space.dim) == (
        "efficientnet-lite2", 260, 1280)
    assert len(store.image_ids()) == 3
    direct = lite2.embed(np.stack([prepare_image(photos["coffee"], 260)]))[0]
    assert max(float(v @ direct / np.linalg.norm(v) / np.linalg.norm(direct))
               for v in store.matrix().astype(np.float32)) > 0.999
    assert classified.exit_code == 0, classified.output
    assert Path(classified.output.splitlines()[0]).name == "coffee.png:"
    assert "espresso" in classified.output.splitlines()[1]
