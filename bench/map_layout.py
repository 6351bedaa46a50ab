"""The embedding map's layout: PCA (today) against t-SNE (openTSNE) and UMAP (umap-learn).

Real EfficientNet-Lite0 embeddings of Fashion-MNIST images:

* **Quality**: ``sklearn.manifold.trustworthiness`` (k=10, Euclidean distances in the
  1280-d embedding space) of each layout of the demo's 3,000 images: how many of each point's
  10 nearest neighbours on the map are also near it in the embedding space (1 is perfect).
  Also for the path used above ``fit_rows``: fitted on 1,000 of them, the rest placed by
  ``transform``.
* **Time** at 10,000 rows (the first 10,000 of 20,000 training images) and 100,000 rows (the
  20,000 repeated five times, each copy with Gaussian noise of 10 % of each feature's
  standard deviation, so no two rows are equal), with ``--threads`` threads, including the
  reduction to 50 principal components that both neighbour methods start from; and at
  100,000 the sample path: fitted on 20,000 rows, the other 80,000 placed by ``transform``.
  At the largest size, trustworthiness is also measured among a random 5,000 of its rows
  (neighbours within that subset: a proxy, comparable between the layouts).
  umap-learn compiles its numba code on first use in a process; that one-off cost is timed
  separately (numba's cache goes to ``<cache>/numba``).

PCA is what the map showed before issue 15 (and still shows while t-SNE is computed):
``layout_2d(m, "pca")``; t-SNE is ``layout_2d(m, "tsne")``, what the map job computes; UMAP
is ``umap.UMAP`` with its defaults on the same 50 components. Writes a PNG of the demo's
map coloured by true label, PCA beside t-SNE, to ``--out``.

    python bench/map_layout.py [--cache bench/out] [--out bench/out/map] [--threads 2]
        [--sizes 10000 100000] [--skip-umap]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from embedded_sets import load_set
from sklearn.manifold import trustworthiness

from labeler.learning.projection import TSNE_INPUT_DIMS, fit_pca, layout_2d, sample_rows
from labeler.learning.projection import transform as pca_transform

SAMPLE_ROWS = 20_000  # rows fitted on in the sample-and-transform path at 100,000
SMALL_SAMPLE = 1_000  # the same path on the demo's 3,000, where quality can be measured
SUBSET = 5_000  # rows of the largest set among which trustworthiness is measured


def reduced(matrix: np.ndarray) -> np.ndarray:
    """The 50-component input both neighbour layouts start from (as layout_2d makes it)."""
    return pca_transform(matrix, fit_pca(matrix, TSNE_INPUT_DIMS))


def umap_layout(matrix: np.ndarray, threads: int, fit_rows: int | None = None) -> np.ndarray:
    """umap-learn with its defaults on 50 principal components; sample + transform if asked."""
    import umap  # imports TensorFlow too (umap/__init__ loads ParametricUMAP)

    points = reduced(matrix)
    reducer = umap.UMAP(n_components=2, n_jobs=threads)
    if fit_rows is None or fit_rows >= len(points):
        return reducer.fit_transform(points)
    fitted = sample_rows(len(points), fit_rows)
    coords = np.empty((len(points), 2), dtype=np.float32)
    coords[fitted] = reducer.fit_transform(points[fitted])
    rest = np.setdiff1d(np.arange(len(points)), fitted)
    coords[rest] = reducer.transform(points[rest])
    return coords


def timed(make: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    coords = make()
    return np.asarray(coords), time.perf_counter() - start


def noisy_copies(X: np.ndarray, copies: int, seed: int = 0) -> np.ndarray:
    """``copies`` stacked copies of ``X`` (float16), each with its own small Gaussian noise."""
    rng = np.random.default_rng(seed)
    scale = 0.1 * X.astype(np.float32).std(axis=0)
    out = np.empty((len(X) * copies, X.shape[1]), dtype=np.float16)
    for copy in range(copies):
        noise = rng.normal(size=X.shape).astype(np.float32) * scale
        out[copy * len(X) : (copy + 1) * len(X)] = X.astype(np.float32) + noise
    return out


def draw(layouts: dict[str, np.ndarray], y: np.ndarray, names: list[str], path: Path) -> None:
    """Side-by-side scatter plots coloured by true label, one legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(layouts), figsize=(6.5 * len(layouts), 6.5))
    colours = plt.get_cmap("tab10")
    for ax, (title, coords) in zip(np.atleast_1d(axes), layouts.items(), strict=True):
        for k, name in enumerate(names):
            at = y == k
            ax.scatter(coords[at, 0], coords[at, 1], s=4, color=colours(k), label=name)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.legend(*np.atleast_1d(axes)[0].get_legend_handles_labels(), loc="lower center",
               ncol=len(names), markerscale=4, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("bench/out"),
                        help="embedded sets (<name>.npz), backbone weights, vector cache")
    parser.add_argument("--out", type=Path, default=Path("bench/out/map"),
                        help="folder for the PNG of the demo's map")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--skip-umap", action="store_true", help="PCA and t-SNE only")
    args = parser.parse_args()
    os.environ.setdefault("NUMBA_CACHE_DIR", str((args.cache / "numba").resolve()))
    threads = args.threads
    methods: dict[str, Callable[..., np.ndarray]] = {
        "PCA (before; shown meanwhile)": lambda m, fit=None: layout_2d(m, "pca").coords,
        "t-SNE (openTSNE, the map job)": lambda m, fit=None: layout_2d(
            m, "tsne", n_jobs=threads, **({"fit_rows": fit} if fit else {})).coords,
    }
    if not args.skip_umap:
        methods["UMAP (umap-learn)"] = lambda m, fit=None: umap_layout(m, threads, fit)
        start = time.perf_counter()
        umap_layout(np.random.default_rng(0).normal(size=(300, 64)), threads, fit_rows=200)
        print(f"umap-learn first use in this process (imports + numba compile or cache load): "
              f"{time.perf_counter() - start:.1f} s\n")

    X, y, names = load_set("demo3k", args.cache)
    X32 = X.astype(np.float32)
    print(f"quality on demo3k ({len(X)} images): trustworthiness, k=10")
    print(f"{'method':<30}{'all rows':>10}{'s':>7}   fit {SMALL_SAMPLE} + transform{'s':>7}")
    demo_maps = {}
    for name, make in methods.items():
        coords, seconds = timed(lambda make=make: make(X))
        demo_maps[name] = coords
        cells = f"{trustworthiness(X32, coords, n_neighbors=10):>10.3f}{seconds:>7.1f}"
        if not name.startswith("PCA"):  # PCA is fitted on a sample anyway (20,000 rows)
            part, part_s = timed(lambda make=make: make(X, SMALL_SAMPLE))
            cells += f"   {trustworthiness(X32, part, n_neighbors=10):>18.3f}{part_s:>7.1f}"
        print(f"{name:<30}{cells}", flush=True)
    png = args.out / "map_demo3k.png"
    chosen = "t-SNE (openTSNE, the map job)"
    draw({"PCA (before)": demo_maps[next(iter(methods))], chosen: demo_maps[chosen]},
         y, names, png)
    print(f"wrote {png}\n")

    big, _, _ = load_set("fmnist20k", args.cache)
    largest = max(args.sizes)
    print(f"time on fmnist20k rows, {threads} threads (seconds); trustworthiness (k=10) at "
          f"{largest:,} measured among a random {SUBSET:,} of the rows")
    print(f"{'method':<30}" + "".join(f"{n:>10,}" for n in args.sizes)
          + f"{'trust.':>8}   {SAMPLE_ROWS:,} + transform{'trust.':>8}")
    data = {}
    for size in args.sizes:
        copies = -(-size // len(big))
        data[size] = (big if copies == 1 else noisy_copies(big, copies))[:size]
    subset = sample_rows(largest, SUBSET, seed=1)
    subset_x = data[largest][subset].astype(np.float32)

    def trust(coords: np.ndarray) -> float:
        return trustworthiness(subset_x, coords[subset], n_neighbors=10)

    for name, make in methods.items():
        cells = ""
        for size in args.sizes:
            coords, seconds = timed(lambda make=make, size=size: make(data[size]))
            cells += f"{seconds:>10.1f}"
        cells += f"{trust(coords):>8.3f}"
        if not name.startswith("PCA") and largest > SAMPLE_ROWS:
            coords, seconds = timed(lambda make=make: make(data[largest], SAMPLE_ROWS))
            cells += f"   {seconds:>20.1f}{trust(coords):>8.3f}"
        print(f"{name:<30}{cells}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
