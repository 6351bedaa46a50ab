"""EfficientNet-Lite0 against Lite2 (or any backbones), in one run: embed speed and labels.

For each backbone (the first is the baseline):

- embed speed: image files through the app's real pipeline (``Backbone.embed_files``:
  Pillow decode, resize, batched forward pass), hot, on Fashion-MNIST PNGs and on crops
  of real photos, the backbones timed alternately so shared-machine noise hits both;
- label efficiency: ``auto`` and ``random`` replayed by the simulation (the code rounds
  run) on the first ``--count`` Fashion-MNIST test images and on "which photo is this
  crop from": small random crops of the photographs that ship with scikit-learn and
  scikit-image (china, flower, astronaut, coffee, chelsea, rocket, the Hubble deep field,
  an immunohistochemistry slide, the cameraman, coins), ten classes of real photographic
  content with nothing to download.

Needs the Debian package ``dataset-fashion-mnist``. Embeddings are cached in ``--cache``.

    nice -n 10 python bench/backbones.py [--count 3000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from label_efficiency import interpolated_labels, write_images  # noqa: E402

from labeler.learning.simulation import (  # noqa: E402
    full_pool_accuracy,
    load_folder_dataset,
    mean_curves,
    simulate,
)

FMNIST_BUDGETS = [10, 20, 50, 100, 200, 400, 800]
PHOTO_BUDGETS = [10, 20, 30, 50, 100]
STRATEGIES = ["auto", "random"]
PHOTOS = ["china", "flower", "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "camera", "coins"]


def photo_arrays() -> dict[str, np.ndarray]:
    """The photographs that ship with scikit-learn and scikit-image, as RGB arrays."""
    from skimage import data
    from sklearn.datasets import load_sample_image

    arrays = {name: load_sample_image(f"{name}.jpg") for name in ("china", "flower")}
    for name in PHOTOS[2:]:
        image = getattr(data, name)()
        arrays[name] = np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3]
    return arrays


def write_photo_crops(folder: Path, per_photo: int, seed: int = 0) -> Path:
    """Random crops (2-10 % of the area, 128 px) of each photo, one folder per photo."""
    rng = np.random.default_rng(seed)
    for name, array in photo_arrays().items():
        height, width = array.shape[:2]
        for index in range(per_photo):
            path = folder / name / f"{index:03d}.png"
            area = rng.uniform(0.02, 0.10) * height * width
            side = int(np.sqrt(area))
            top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            crop = Image.fromarray(array[top:top + side, left:left + side])
            crop.resize((128, 128), Image.Resampling.BICUBIC).save(path)
    return folder


def embed_speed(backbones: dict, paths: list[str], repeats: int) -> dict[str, float]:
    """Images per second through ``embed_files``, best of ``repeats`` alternating runs."""
    best = dict.fromkeys(backbones, 0.0)
    for backbone in backbones.values():  # warm-up: graph tracing, first batches
        for _ in backbone.embed_files(paths[:64]):
            pass
    for _ in range(repeats):
        for name, backbone in backbones.items():
            started = time.perf_counter()
            for _ in backbone.embed_files(paths):
                pass
            best[name] = max(best[name], len(paths) / (time.perf_counter() - started))
    return best


def label_efficiency(name: str, paths: list[str], y: np.ndarray, budgets: list[int],
                     seeds: list[int], cache: Path, load) -> dict:
    """Mean held-out accuracy per strategy and budget, and the full-pool accuracy."""
    from labeler.embeddings.registry import known_identity
    from labeler.learning.simulation import cached_embeddings

    started = time.perf_counter()
    X = cached_embeddings(paths, cache, load, identity=known_identity(name))
    print(f"  {name}: {len(X)} vectors ready in {time.perf_counter() - started:.0f} s",
          flush=True)
    curves = mean_curves(simulate(X, y, STRATEGIES, budgets, seeds=seeds, max_batch=20))
    return {"curves": curves, "full": full_pool_accuracy(X, y, seeds)}


def print_table(title: str, results: dict, budgets: list[int]) -> None:
    names = list(results)
    print(f"\n{title}: mean held-out accuracy over seeds")
    print("labels " + "".join(f"{n + ' ' + s:>32}" for n in names for s in STRATEGIES))
    for budget in budgets:
        print(f"{budget:>6} " + "".join(
            f"{np.mean(results[n]['curves'][s][budget]):>32.3f}"
            for n in names for s in STRATEGIES))
    for name in names:
        result = results[name]
        random_400 = np.mean(result["curves"]["random"].get(budgets[-2], [np.nan]))
        auto_to_match = interpolated_labels(result["curves"]["auto"], random_400)
        print(f"{name}: full pool {result['full']:.3f}; auto reaches random's "
              f"{budgets[-2]}-label accuracy ({random_400:.3f}) with "
              + (f"≈{auto_to_match:.0f} labels" if auto_to_match else "more than the budget"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="efficientnet-lite0,efficientnet-lite2",
                        help="comma-separated; the first is the baseline")
    parser.add_argument("--count", type=int, default=3000, help="Fashion-MNIST images")
    parser.add_argument("--crops", type=int, default=40, help="crops per photo")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--speed-images", type=int, default=256, help="0: skip the speed part")
    parser.add_argument("--cache", type=Path, default=Path("bench/out"))
    args = parser.parse_args()

    from labeler.embeddings.registry import load_backbone

    names = [n.strip() for n in args.backbones.split(",")]
    fmnist = load_folder_dataset(write_images(args.cache / "fashion-mnist-t10k", args.count))
    photos = load_folder_dataset(write_photo_crops(args.cache / "photo-crops", args.crops))
    loaded: dict = {}

    def loader(name: str):
        def load():
            if name not in loaded:
                loaded[name] = load_backbone(name, args.cache)
            return loaded[name]
        return load

    if args.speed_images:
        for name in names:
            loader(name)()
        print("embed speed (images/s through the app's pipeline, best of 3, hot):")
        for what, dataset in (("Fashion-MNIST 28 px PNG", fmnist),
                              ("photo crops 128 px PNG", photos)):
            files = [str(p) for p in dataset.paths[:args.speed_images]]
            speed = embed_speed(loaded, files, 3)
            print(f"  {what}: " + ", ".join(
                f"{n} {s:.1f}/s ({s / speed[names[0]]:.2f}x)" for n, s in speed.items()))
        print("  input sizes: " + ", ".join(f"{n} {loaded[n].spec.input_size} px"
                                            for n in names))

    seeds = list(range(args.seeds))
    for title, dataset, budgets in (
            (f"Fashion-MNIST {len(fmnist.paths)}", fmnist, FMNIST_BUDGETS),
            (f"photo crops {len(photos.paths)} (10 photos)", photos, PHOTO_BUDGETS)):
        print(f"\n{title}:")
        paths = [str(p) for p in dataset.paths]
        results = {n: label_efficiency(n, paths, dataset.labels, budgets, seeds, args.cache,
                                       loader(n)) for n in names}
        print_table(title, results, budgets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
