"""The output of ``labeler simulate``: ``curve.csv`` and ``curve.png``, and mean curves.

matplotlib's object-oriented API only (no pyplot), so it runs without a display.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from labeler.storage import atomic_writer

from .replay import CurveRow

CURVE_COLUMNS = ("strategy", "seed", "n_labels", "accuracy")
# Appended to curve.csv when the calibration was measured (``simulate(calibrate=True)``).
CALIBRATION_COLUMNS = ("ece", "ece_calibrated", "temperature")




def write_curve(rows: Sequence[CurveRow], out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write the rows as ``curve.csv`` and plot them as ``curve.png``.

    The plot has one line per strategy, the mean over seeds, with a band from the worst to
    the best seed; ``random`` is dashed, as the baseline.

    Args:
        rows: Rows from :func:`simulate`.
        out_dir: Created if missing.

    Returns:
        The paths of the CSV file and the PNG file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out / "curve.csv", out / "curve.png"
    with atomic_writer(csv_path, text=True) as f:
        writer = csv.writer(f)
        calibrated = any(np.isfinite(row.ece) for row in rows)
        writer.writerow(CURVE_COLUMNS + CALIBRATION_COLUMNS * calibrated)
        for row in rows:
            extra = [f"{value:.6f}" for value in row[4:]] if calibrated else []
            writer.writerow([row.strategy, row.seed, row.n_labels, f"{row.accuracy:.6f}", *extra])
    _plot(rows, png_path)
    return csv_path, png_path


def mean_curves(rows: Iterable[CurveRow]) -> dict[str, dict[int, list[float]]]:
    """Group accuracies as ``{strategy: {n_labels: [accuracy per seed]}}``, in row order."""
    grouped: dict[str, dict[int, list[float]]] = {}
    for row in rows:
        grouped.setdefault(row.strategy, {}).setdefault(row.n_labels, []).append(row.accuracy)
    return grouped


def _plot(rows: Sequence[CurveRow], path: Path) -> None:
    # The object-oriented API with no pyplot: no global figure state and no GUI backend,
    # so this works in a server thread and on machines without a display (Agg canvas).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    grouped = mean_curves(rows)
    counts = sorted({row.n_labels for row in rows})
    n_seeds = len({row.seed for row in rows})
    for strategy, by_count in grouped.items():
        xs = sorted(by_count)
        scores = [np.asarray(by_count[x]) for x in xs]
        style = "--" if strategy == "random" else "-"
        (line,) = ax.plot(
            xs, [s.mean() for s in scores], style, marker="o", markersize=4, label=strategy
        )
        if n_seeds > 1:
            ax.fill_between(
                xs,
                [s.min() for s in scores],
                [s.max() for s in scores],
                color=line.get_color(),
                alpha=0.15,
                linewidth=0,
            )
    # Budgets spanning decades (10, 20, 50, ... 800) are only readable on a log axis; an
    # even schedule (step, 2*step, ...) reads best on a linear one.
    uneven = len(set(np.diff(counts))) > 1
    if uneven and counts and counts[-1] >= 10 * counts[0]:
        ax.set_xscale("log")
    if len(counts) <= 12:
        ax.set_xticks(counts, [str(c) for c in counts])
        ax.minorticks_off()
    ax.set_xlabel("Labelled images")
    ax.set_ylabel("Held-out accuracy")
    band = "; band: worst to best seed" if n_seeds > 1 else ""
    ax.set_title(f"Label efficiency (mean of {n_seeds} seed{'s' * (n_seeds > 1)}{band})")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    with atomic_writer(path) as handle:
        fig.savefig(handle, format="png")
