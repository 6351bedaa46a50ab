"""The output of ``labeler simulate`` on tag data: ``curve.csv`` and ``curve.png``.

Two panels, held-out mAP and micro-F1 against labels, one line per strategy (the mean over
seeds, with a band from the worst to the best seed); ``random`` is dashed, as the baseline.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from labeler.storage import atomic_writer

from .tag_replay import TagCurveRow

TAG_CURVE_COLUMNS = ("strategy", "seed", "n_labels", "micro_f1", "map", "macro_f1")
_PANELS = (("map", "Held-out mAP"), ("micro_f1", "Held-out micro-F1"))


def mean_tag_curves(rows: Iterable[TagCurveRow], field: str) -> dict[str, dict[int, list[float]]]:
    """Group a field as ``{strategy: {n_labels: [value per seed]}}``, in row order."""
    grouped: dict[str, dict[int, list[float]]] = {}
    for row in rows:
        grouped.setdefault(row.strategy, {}).setdefault(row.n_labels, []).append(
            getattr(row, field))
    return grouped


def write_tag_curve(rows: Sequence[TagCurveRow], out_dir: str | os.PathLike[str]
                    ) -> tuple[Path, Path]:
    """Write the rows as ``curve.csv`` and plot them as ``curve.png``; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out / "curve.csv", out / "curve.png"
    with atomic_writer(csv_path, text=True) as f:
        writer = csv.writer(f)
        writer.writerow(TAG_CURVE_COLUMNS)
        for row in rows:
            writer.writerow([row.strategy, row.seed, row.n_labels,
                             *(f"{value:.6f}" for value in row[3:])])
    _plot(rows, png_path)
    return csv_path, png_path


def _plot(rows: Sequence[TagCurveRow], path: Path) -> None:
    # The object-oriented API with no pyplot: no global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    n_seeds = len({row.seed for row in rows})
    for ax, (field, title) in zip(fig.subplots(1, 2), _PANELS, strict=True):
        for strategy, by_count in mean_tag_curves(rows, field).items():
            xs = sorted(by_count)
            values = [np.asarray(by_count[x]) for x in xs]
            (line,) = ax.plot(xs, [np.nanmean(v) for v in values],
                              "--" if strategy == "random" else "-", marker="o", markersize=4,
                              label=strategy)
            if n_seeds > 1:
                ax.fill_between(xs, [np.nanmin(v) for v in values],
                                [np.nanmax(v) for v in values], color=line.get_color(),
                                alpha=0.15, linewidth=0)
        counts = sorted({row.n_labels for row in rows})
        if counts and counts[-1] >= 10 * counts[0] and len(set(np.diff(counts))) > 1:
            ax.set_xscale("log")
        if len(counts) <= 12:
            ax.set_xticks(counts, [str(c) for c in counts])
            ax.minorticks_off()
        ax.set_xlabel("Labelled images")
        ax.set_title(f"{title} (mean of {n_seeds} seed{'s' * (n_seeds > 1)})")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
    with atomic_writer(path) as handle:
        fig.savefig(handle, format="png")
