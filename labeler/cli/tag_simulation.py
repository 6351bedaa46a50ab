"""``labeler simulate`` on multi-label (tag) data: reading it, replaying it, printing curves.

Multi-label labels are an N×T 0/1 ``.npy`` (rows in the order of ``--embeddings``) or a CSV
of file,tags (:mod:`labeler.learning.simulation.tag_data`). The replay is
:func:`labeler.learning.simulation.simulate_tags`; the curves are held-out micro-F1 and mAP.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

#: The strategies compared when ``--strategies`` is not given.
TAG_DEFAULT_STRATEGIES = ("auto", "tag_threshold_diverse", "tag_entropy_diverse", "random")


def is_multi_label(labels_path: str | None) -> bool:
    """Whether ``--labels`` names multi-label data: a CSV, or a 2-D ``.npy``."""
    if labels_path is None:
        return False
    if labels_path.lower().endswith(".csv"):
        return True
    try:  # memory-mapped: only the header is read
        shape = np.load(labels_path, mmap_mode="r", allow_pickle=False).shape
    except (OSError, ValueError, AttributeError):
        return False  # load_arrays reports the problem in its own words
    return len(shape) == 2


def load_multi_label(folder: Path | None, embeddings_npy: str | None, labels_path: str,
                     embed: Callable[[list[Path]], Any]) -> tuple[Any, np.ndarray, list[str]]:
    """``(X, Y, tag names)`` from ``--embeddings`` or FOLDER and the multi-label ``--labels``."""
    from ..errors import LabelerError
    from ..learning import simulation
    from ..learning.simulation.data import load_npy

    if labels_path.lower().endswith(".csv"):
        files, Y, tags = simulation.load_tag_csv(labels_path)
        if embeddings_npy:
            X = load_npy(embeddings_npy, "embeddings")
            if X.ndim != 2 or len(X) != len(Y) or X.dtype.kind not in "fiu":
                raise LabelerError(f"{embeddings_npy} must be a 2-D numeric array with one row "
                                   f"per CSV row ({len(Y)}); it has shape {X.shape}.")
            return X.astype(np.float32), Y, tags
        if folder is None:
            raise click.UsageError("A CSV of file,tags needs the FOLDER its files are in, or "
                                   "--embeddings with one row per CSV row.")
        paths = [folder / name for name in files]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise LabelerError(f"{len(missing)} file(s) of the CSV are not in {folder} (e.g. "
                               f"{missing[0]}); fix the CSV or the folder.")
        return embed(paths), Y, tags
    if not embeddings_npy:
        raise click.UsageError("A .npy of multi-label labels goes with --embeddings.")
    X = load_npy(embeddings_npy, "embeddings")
    if X.ndim != 2 or X.dtype.kind not in "fiu" or not np.isfinite(X).all():
        raise LabelerError(f"{embeddings_npy} must be a 2-D array of finite numbers (one row "
                           f"per image); it has shape {X.shape}.")
    Y = simulation.load_tag_arrays(labels_path, len(X))
    return X.astype(np.float32), Y, [str(t) for t in range(Y.shape[1])]


def simulate_multi_label(X: Any, Y: np.ndarray, tags: list[str], strategies: str | None,
                         budget: int, step: int, seeds: int, out: Path) -> None:
    """Replay the tag strategies, write OUT/curve.csv and curve.png, print the mean curves."""
    from ..learning import simulation

    names = ([name.strip() for name in strategies.split(",") if name.strip()] if strategies
             else list(TAG_DEFAULT_STRATEGIES))
    click.echo(f"{len(X)} images, {len(tags)} tags, {Y.sum(axis=1).mean():.2f} tags per image")
    try:
        rows = simulation.simulate_tags(X, Y, names, simulation.label_schedule(budget, step),
                                        seeds=range(seeds), max_batch=step)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    csv_path, png_path = simulation.write_tag_curve(rows, out)
    for field, title in (("micro_f1", "micro-F1"), ("map", "mAP")):
        click.echo(title)
        for strategy, curve in simulation.mean_tag_curves(rows, field).items():
            points = ", ".join(f"{n}: {np.nanmean(v):.3f}" for n, v in sorted(curve.items()))
            click.echo(f"{strategy:>22}  {points}")
    click.echo(f"Wrote {csv_path} and {png_path}")
