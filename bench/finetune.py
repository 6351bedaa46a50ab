"""Fine-tuning EfficientNet-Lite0 on Fashion-MNIST labels against the frozen backbone.

For each label count: a random labelled sample of a 2,000-image pool (the demo's 3,000
Fashion-MNIST images; the other 1,000 are the test split), then

- baseline (same run): the app's head (`LogisticHead`, pool-standardised) on the frozen
  backbone's vectors, test accuracy;
- `finetune` as ``labeler finetune`` runs it (default settings: top two stages, four
  views, early stopping on a fifth of the labels, verdict on another fifth): its own
  held-out verdict, training time, and the same head on the fine-tuned vectors;
- re-embedding: the fine-tuned model through the app's pipeline (``embed_files``), timed
  on the test split plus the labelled images; 3,000 and 20,000 extrapolated from it.

    nice -n 10 python bench/finetune.py [--labels 200,500,1000] [--cache bench/out]
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

from labeler.learning.heads import LogisticHead, pool_statistics  # noqa: E402


def demo_files(folder: Path) -> tuple[list[str], np.ndarray]:
    """The demo's 3,000 Fashion-MNIST images as PNG files (written once), and their labels."""
    from labeler.demo import load_demo_images

    pixels, labels, _ = load_demo_images()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, image in enumerate(pixels):
        path = folder / f"{index:05d}.png"
        if not path.exists():
            Image.fromarray(image).convert("RGB").save(path)
        paths.append(str(path))
    return paths, np.asarray(labels)


def embed(backbone, paths: list[str]) -> tuple[np.ndarray, float]:
    """Vectors of ``paths`` through the app's pipeline, and images per second."""
    started = time.perf_counter()
    out = np.zeros((len(paths), backbone.spec.dim), np.float32)
    for batch in backbone.embed_files(paths):
        out[batch.positions] = batch.vectors
    return out, len(paths) / (time.perf_counter() - started)


def head_accuracy(pool: np.ndarray, labelled: np.ndarray, y: np.ndarray, test: np.ndarray,
                  y_test: np.ndarray) -> float:
    """Test accuracy of the app's head fitted on ``labelled`` rows of the pool."""
    mean, scale = pool_statistics(pool)
    head = LogisticHead(pool_mean=mean, pool_scale=scale).fit(pool[labelled], y)
    return float(np.mean(head.predict(test) == y_test))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", default="200,500,1000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("bench/out"))
    args = parser.parse_args()

    from labeler.embeddings import BackboneSpec, load_backbone
    from labeler.embeddings.backbone import Backbone
    from labeler.embeddings.finetune import finetune

    paths, labels = demo_files(args.cache / "fashion-mnist-demo")
    order = np.random.default_rng(args.seed).permutation(len(paths))
    test, pool = order[:1000], order[1000:]
    backbone = load_backbone("efficientnet-lite0", args.cache)
    frozen, frozen_speed = embed(backbone, paths)
    print(f"frozen Lite0: {len(paths)} images embedded at {frozen_speed:.1f}/s")
    rows = []
    for n in (int(x) for x in args.labels.split(",")):
        labelled = pool[:n]
        baseline = head_accuracy(frozen[pool], np.arange(n), labels[labelled], frozen[test],
                                 labels[test])
        started = time.perf_counter()
        result = finetune(backbone, [paths[i] for i in labelled], labels[labelled])
        train_s = time.perf_counter() - started
        tuned = Backbone(BackboneSpec("tuned", "bench", 224, 1280), result.feature_model)
        again = np.concatenate([test, pool])
        vectors, speed = embed(tuned, [paths[i] for i in again])
        tuned_pool, tuned_test = vectors[len(test):], vectors[:len(test)]
        accuracy = head_accuracy(tuned_pool, np.arange(n), labels[labelled], tuned_test,
                                 labels[test])
        rows.append((n, baseline, accuracy, result, train_s, speed))
        print(f"{n} labels: frozen {baseline:.3f}, fine-tuned {accuracy:.3f} "
              f"({accuracy - baseline:+.3f}); verdict on {result.split[2]} held-out labels: "
              f"{result.finetuned_accuracy:.3f} vs {result.frozen_accuracy:.3f}, "
              f"{'adopted' if result.adopted else 'refused'}; epochs {result.epochs} "
              f"(best {result.best_epoch}); fine-tune {train_s:.0f} s "
              f"({', '.join(f'{k} {v:.0f} s' for k, v in result.seconds.items())}); "
              f"re-embedding {speed:.1f}/s", flush=True)

    print("\nlabels  frozen  fine-tuned   gain  adopted  fine-tune s  re-embed 3k s  20k s")
    for n, baseline, accuracy, result, train_s, speed in rows:
        print(f"{n:>6}  {baseline:6.3f}  {accuracy:10.3f}  {accuracy - baseline:+.3f}  "
              f"{'yes' if result.adopted else 'no':>7}  {train_s:11.0f}  {3000 / speed:13.0f}  "
              f"{20000 / speed:5.0f}")
    print(f"(frozen Lite0 embedded at {frozen_speed:.1f}/s in the same run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
