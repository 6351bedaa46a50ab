"""Label-efficiency simulation: how many labels each query strategy needs on labelled data.

The engine of ``labeler simulate``. A dataset whose labels are all known plays the
annotator (the "oracle"): each round a strategy picks pool images, their labels are
revealed, the head is refitted, and its accuracy on a held-out split is recorded at fixed
numbers of labels. The result is a learning curve per strategy (``curve.csv`` and
``curve.png``), the same comparison the sampling policy in :mod:`labeler.sampling` was
chosen by.

No Flask, no database; TensorFlow is imported only inside :func:`cached_embeddings`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from labeler.classifier import LogisticHead, NotEnoughLabels, pool_statistics
from labeler.errors import LabelerError
from labeler.imaging import open_image
from labeler.sampling import STRATEGIES, rank_pool
from labeler.storage import atomic_writer, file_sha256

if TYPE_CHECKING:
    from labeler.embeddings import Backbone

log = logging.getLogger(__name__)

CURVE_COLUMNS = ("strategy", "seed", "n_labels", "accuracy")
# The Fashion-MNIST measurements behind the sampling policy used a third of the data as the
# held-out set (pool 2,000, held-out 1,000).
DEFAULT_HOLDOUT_FRACTION = 1 / 3
# These strategies score with the model's probabilities, so they cannot run before the head
# can be trained; until then they pick at random (the usual "random seed set").
_NEEDS_MODEL = frozenset({"least_confident", "margin", "entropy", "margin_diverse"})
# Write the embedding cache after this many new vectors, so an interrupted run keeps them.
_SAVE_EVERY = 1024


class CurveRow(NamedTuple):
    """One point of a learning curve: held-out accuracy after ``n_labels`` labels."""

    strategy: str
    seed: int
    n_labels: int
    accuracy: float


@dataclass(frozen=True)
class FolderDataset:
    """Images of a folder-per-class dataset.

    Attributes:
        paths: Readable image files, sorted by class folder and then by path.
        labels: The class (immediate subfolder name) of each file, a ``str`` array.
        skipped: ``(path, reason)`` of files that are not readable images.
    """

    paths: list[Path]
    labels: np.ndarray
    skipped: list[tuple[Path, str]]


# --- data ------------------------------------------------------------------------------------


def _is_hidden(name: str) -> bool:
    # .DS_Store, ._resource-forks, .git: never images somebody meant to label.
    return name.startswith(".") or name == "__MACOSX"


def _unreadable_reason(path: Path) -> str | None:
    """Why Pillow cannot decode ``path`` as an accepted image, or None if it can."""
    try:
        with open_image(path.read_bytes()) as image:
            if image.format == "JPEG":
                image.draft(image.mode, (256, 256))  # validate big photos at reduced scale
            image.load()  # decode fully: a truncated file opens fine but fails here
    except Exception as exc:  # Pillow raises a zoo of exception types on damaged files
        return str(exc) or type(exc).__name__
    return None


def load_folder_dataset(folder: str | os.PathLike[str]) -> FolderDataset:
    """Read a folder-per-class dataset: ``folder/<class>/**/<image>``.

    Every file is judged by decoding it with Pillow, never by its extension; files that
    cannot be decoded, and files lying directly in ``folder``, are skipped and reported in
    ``skipped``. Hidden files and folders are ignored.

    Args:
        folder: The dataset root; each immediate subfolder is one class.

    Returns:
        The readable images, their classes and the skipped files.

    Raises:
        LabelerError: ``folder`` is missing or has fewer than two classes with images.
    """
    root = Path(folder)
    if not root.is_dir():
        raise LabelerError(f"{root} is not a folder; pass a folder with one subfolder per class.")
    paths: list[Path] = []
    labels: list[str] = []
    skipped: list[tuple[Path, str]] = []
    for entry in sorted(root.iterdir()):
        if _is_hidden(entry.name):
            continue
        if not entry.is_dir():
            skipped.append((entry, "not inside a class subfolder"))
            continue
        for path in sorted(entry.rglob("*")):
            if not path.is_file() or any(_is_hidden(p) for p in path.relative_to(root).parts):
                continue
            reason = _unreadable_reason(path)
            if reason is None:
                paths.append(path)
                labels.append(entry.name)
            else:
                skipped.append((path, reason))
    if len(set(labels)) < 2:
        raise LabelerError(
            f"{root} has images in {len(set(labels))} class subfolder(s); a simulation needs "
            "at least two subfolders (one per class) containing images."
        )
    return FolderDataset(paths, np.asarray(labels, dtype=str), skipped)


def load_arrays(
    embeddings_npy: str | os.PathLike[str], labels_npy: str | os.PathLike[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Load precomputed embeddings and their labels from ``.npy`` files.

    Args:
        embeddings_npy: A 2-D numeric array, one row per image.
        labels_npy: A 1-D array of integer or string labels, one per row.

    Returns:
        ``(X, y)``: embeddings as float32 and the labels as stored.

    Raises:
        LabelerError: A file is missing or unreadable, has the wrong shape or type, or the
            two disagree in length.
    """
    X = _load_npy(embeddings_npy, "embeddings")
    y = _load_npy(labels_npy, "labels")
    if X.ndim != 2 or X.dtype.kind not in "fiu" or X.shape[0] == 0:
        raise LabelerError(
            f"{embeddings_npy} holds a {X.dtype} array of shape {X.shape}; the embeddings "
            "must be a non-empty 2-D numeric array (one row per image)."
        )
    if not np.isfinite(X).all():
        raise LabelerError(f"{embeddings_npy} contains NaN or infinite values; recompute them.")
    if y.ndim != 1 or y.dtype.kind not in "iuUS":
        raise LabelerError(
            f"{labels_npy} holds a {y.dtype} array of shape {y.shape}; the labels must be a "
            "1-D array of integers or strings, e.g. np.save(path, np.asarray(labels, dtype=str))."
        )
    if len(y) != len(X):
        raise LabelerError(
            f"{embeddings_npy} has {len(X)} rows but {labels_npy} has {len(y)} labels; "
            "pass one label per embedding row, in the same order."
        )
    return X.astype(np.float32, copy=False), y


def _load_npy(path: str | os.PathLike[str], what: str) -> np.ndarray:
    try:
        # allow_pickle=False: an .npy from elsewhere must not be able to run code.
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise LabelerError(f"There is no {what} file at {path}; check the path.") from exc
    except (OSError, ValueError) as exc:
        raise LabelerError(
            f"{path} could not be read as a .npy array of {what} ({exc}). Save it with "
            "numpy.save, as numbers or strings (not Python objects)."
        ) from exc
    if not isinstance(array, np.ndarray):  # an .npz archive loads as a mapping
        raise LabelerError(f"{path} is an .npz archive; save the {what} alone with numpy.save.")
    return array


# --- embeddings --------------------------------------------------------------------------------



def _known_spec(backbone_name: str) -> tuple[str, str, int] | None:
    """(name, version, input size) of the default backbone, known without loading TF."""
    from labeler.embeddings import DEFAULT_BACKBONE
    from labeler.embeddings.efficientnet_lite import INPUT_SIZE
    from labeler.embeddings.registry import LITE0_EMBEDDING_VERSION

    if backbone_name.strip().lower() == DEFAULT_BACKBONE:
        return DEFAULT_BACKBONE, LITE0_EMBEDDING_VERSION, INPUT_SIZE
    return None  # other backbones' versions are only known once loaded


class _VectorCache:
    """Embeddings of one backbone (name, version, input size), keyed by file SHA-256.

    One ``.npz`` per backbone key under ``<cache_dir>/embeddings/``, replaced atomically.
    """

    def __init__(self, cache_dir: Path, name: str, version: str, size: int) -> None:
        key = hashlib.sha256(f"{name}\0{version}\0{size}".encode()).hexdigest()[:16]
        self.path = cache_dir / "embeddings" / f"{key}.npz"
        self.meta = np.asarray([name, version, str(size)])
        self.vectors: dict[str, np.ndarray] = {}
        try:
            with np.load(self.path, allow_pickle=False) as stored:
                if stored["meta"].tolist() == self.meta.tolist():
                    self.vectors = dict(
                        zip(stored["sha256"].tolist(), stored["vectors"], strict=True)
                    )
        except FileNotFoundError:
            pass
        except Exception as exc:  # a damaged cache only costs re-embedding
            log.warning("Ignoring the unreadable embedding cache %s (%s).", self.path, exc)

    def save(self) -> None:
        # Readers see the old file or the new one, never half of it.
        with atomic_writer(self.path) as handle:
            np.savez(
                handle,
                meta=self.meta,
                sha256=np.asarray(list(self.vectors), dtype="U64"),
                vectors=np.asarray(list(self.vectors.values()), dtype=np.float32),
            )


def cached_embeddings(
    paths: Sequence[str | os.PathLike[str]],
    backbone_name: str,
    cache_dir: str | os.PathLike[str],
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Embed image files with a real backbone, reusing vectors computed before.

    Vectors are cached in ``cache_dir/embeddings/`` keyed by the file's SHA-256 and the
    backbone's name, version and input size, so a renamed or copied file is not embedded
    twice and a changed backbone never serves stale vectors. When every file is cached and
    the backbone is the default one, TensorFlow is not even imported.

    Args:
        paths: Image files.
        backbone_name: A name :func:`labeler.embeddings.load_backbone` accepts.
        cache_dir: Directory for the converted backbone weights and the vector cache.
        batch_size: Images per forward pass.
        progress: Called as ``progress(done, total)`` after each batch, where ``total`` is
            the number of files that were not cached.

    Returns:
        float32 array of shape ``(len(paths), dim)``, in the order of ``paths``.

    Raises:
        LabelerError: Some files could not be read (they are listed).
        labeler.embeddings.BackboneUnavailable: The backbone cannot be loaded.
    """
    cache_dir = Path(cache_dir)
    try:
        hashes = [file_sha256(Path(p)) for p in paths]
    except OSError as exc:
        raise LabelerError(f"Cannot read {exc.filename} ({exc.strerror}); check the path.") from exc
    backbone = None
    spec = _known_spec(backbone_name)
    if spec is None:
        backbone = _load_backbone(backbone_name, cache_dir)
        spec = (backbone.spec.name, backbone.spec.version, backbone.spec.input_size)
    cache = _VectorCache(cache_dir, *spec)
    # One file per distinct content: duplicates are embedded once.
    missing = {h: Path(p) for h, p in zip(hashes, paths, strict=True) if h not in cache.vectors}
    if missing:
        backbone = backbone or _load_backbone(backbone_name, cache_dir)
        _embed_missing(backbone, cache, missing, batch_size, progress)
    if not hashes:
        return np.empty((0, 0), dtype=np.float32)
    return np.stack([cache.vectors[h] for h in hashes]).astype(np.float32, copy=False)


def _load_backbone(name: str, cache_dir: Path) -> Backbone:
    from labeler.embeddings import load_backbone  # only here: loading a backbone imports TF

    return load_backbone(name, cache_dir)


def _embed_missing(
    backbone: Backbone,
    cache: _VectorCache,
    missing: dict[str, Path],
    batch_size: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    from labeler.embeddings.pipeline import embed_files

    keys, files = list(missing), list(missing.values())
    failed: list[tuple[Path, str]] = []
    done = unsaved = 0
    for batch in embed_files(backbone, files, batch_size=batch_size):
        for position, vector in zip(batch.positions, batch.vectors, strict=True):
            cache.vectors[keys[position]] = vector
        failed += [(files[position], reason) for position, reason in batch.failed]
        done += len(batch.positions) + len(batch.failed)
        unsaved += len(batch.positions)
        if unsaved >= _SAVE_EVERY:
            cache.save()
            unsaved = 0
        if progress is not None:
            progress(done, len(files))
    cache.save()
    if failed:
        listed = "; ".join(f"{path}: {reason}" for path, reason in failed[:5])
        raise LabelerError(
            f"{len(failed)} image(s) could not be read ({listed}); remove or replace them and "
            "run again (the others are cached)."
        )


# --- simulation --------------------------------------------------------------------------------


def label_schedule(budget: int, step: int) -> list[int]:
    """Label counts at which to measure: ``step, 2*step, ...`` up to and including ``budget``.

    Args:
        budget: The largest number of labels.
        step: Labels added between measurements.

    Returns:
        Increasing label counts; ``budget`` is the last even if ``step`` does not divide it.
    """
    if step <= 0 or budget <= 0:
        raise ValueError(f"budget and step must be positive; got {budget} and {step}.")
    counts = list(range(step, budget + 1, step))
    return counts if counts and counts[-1] == budget else [*counts, budget]


def split_pool(
    y: np.ndarray, seed: int, holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """Split positions into a pool and a held-out set, stratified by class.

    Args:
        y: Labels, shape ``(n_items,)``.
        seed: The same seed always gives the same split.
        holdout_fraction: Share of each class that is held out.

    Returns:
        ``(pool, held_out)``: sorted positions into ``y``.

    Raises:
        LabelerError: Fewer than two classes, or a class with a single image.
    """
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2 or counts.min() < 2:
        raise LabelerError(
            "A simulation needs at least two classes with two or more images each; "
            f"class {classes[counts.argmin()]!r} has {counts.min()}."
        )
    pool, held_out = train_test_split(
        np.arange(len(y)), test_size=holdout_fraction, stratify=y, random_state=seed
    )
    return np.sort(pool), np.sort(held_out)


def full_pool_accuracy(
    X: np.ndarray,
    y: np.ndarray,
    seeds: Iterable[int],
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    make_head: Callable[[], Any] | None = None,
) -> float:
    """Mean held-out accuracy of a head trained on the whole labelled pool: the ceiling.

    Args:
        X: Embeddings, shape ``(n_items, dim)``.
        y: True labels, shape ``(n_items,)``.
        seeds: The seeds of the splits, as given to :func:`simulate`.
        holdout_fraction: As given to :func:`simulate`.
        make_head: As given to :func:`simulate`.

    Returns:
        Accuracy on the held-out set, averaged over the seeds.
    """
    y = np.asarray(y)
    scores = []
    with threadpool_limits(limits=1):  # see simulate
        for seed in seeds:
            pool, held_out = split_pool(y, seed, holdout_fraction)
            head = (make_head or LogisticHead)().fit(X[pool], y[pool])
            scores.append(float(np.mean(head.predict(X[held_out]) == y[held_out])))
    return float(np.mean(scores))


def simulate(
    X: np.ndarray,
    y: np.ndarray,
    strategies: Sequence[str],
    checkpoints: Sequence[int],
    seeds: Sequence[int] = (0, 1, 2),
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    max_batch: int | None = None,
    on_row: Callable[[CurveRow], None] | None = None,
    make_head: Callable[[], Any] | None = None,
) -> list[CurveRow]:
    """Replay active learning with the true labels as the annotator.

    For each seed the data is split once (stratified) into a pool and a held-out set, and
    every strategy starts from zero labels on that same split, so the curves are compared
    on equal terms. Each round a strategy asks :func:`~labeler.sampling.rank_pool` for
    images (``auto`` resolves through :func:`~labeler.sampling.choose_strategy` there), their
    labels are revealed and the head (a :class:`~labeler.classifier.LogisticHead` unless
    ``make_head`` says otherwise) is refitted.
    Strategies that need a model pick at random until the head can be trained.

    While the labels cover a single class the head cannot be trained
    (:class:`~labeler.classifier.NotEnoughLabels`); the accuracy recorded then is that of
    predicting that class for every image, the best a model could do with those labels.

    Args:
        X: Embeddings, shape ``(n_items, dim)``.
        y: True labels (strings or integers), shape ``(n_items,)``.
        strategies: Keys of :data:`labeler.sampling.STRATEGIES`.
        checkpoints: Increasing label counts at which accuracy is recorded, e.g. from
            :func:`label_schedule`.
        seeds: One split and one stream of random choices per seed.
        holdout_fraction: Share of each class held out for measuring accuracy.
        max_batch: Most labels per round (the head is refitted after each round); None
            means one round per checkpoint.
        on_row: Called with each row as soon as it is measured (for progress output).
        make_head: Returns an unfitted head with the estimator contract of
            :mod:`labeler.classifier` (raising ``NotEnoughLabels`` on one class).

    Returns:
        One row per (strategy, seed, checkpoint), in that nesting order.

    Raises:
        ValueError: Unknown strategy, bad checkpoints, or mismatched ``X`` and ``y``.
        LabelerError: A class has fewer than two images.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be 2-D with one row per label; got {X.shape} and {y.shape}.")
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"Unknown strategy {unknown[0]!r}; choose from {', '.join(STRATEGIES)}.")
    checkpoints = [int(c) for c in checkpoints]
    if not checkpoints or checkpoints[0] <= 0 or np.any(np.diff(checkpoints) <= 0):
        raise ValueError(f"checkpoints must be positive and increasing; got {checkpoints}.")
    n_classes = len(np.unique(y))
    rows: list[CurveRow] = []
    # One BLAS/OpenMP thread: on a busy 2-core machine threaded BLAS made each head fit and
    # k-means 20-100x slower (threads spinning against each other), and matrices this small
    # (a pool, a few hundred labels) have little to gain from threads anyway.
    with threadpool_limits(limits=1):
        for seed in seeds:
            pool, held_out = split_pool(y, seed, holdout_fraction)
            if checkpoints[-1] > len(pool):
                raise ValueError(
                    f"The budget of {checkpoints[-1]} labels exceeds the pool of {len(pool)} "
                    f"images (seed {seed}); lower the budget or the held-out fraction."
                )
            # As in a retrain round: the head is standardised by statistics of the whole pool.
            mean, scale = pool_statistics(X[pool])
            seed_head = make_head or functools.partial(LogisticHead, pool_mean=mean,
                                                       pool_scale=scale)
            for strategy in strategies:
                # Seeded by (seed, strategy): adding a strategy leaves the others' runs alone.
                rng = np.random.default_rng([seed, zlib.crc32(strategy.encode())])
                curve = _run_strategy(
                    X[pool],
                    y[pool],
                    X[held_out],
                    y[held_out],
                    strategy,
                    checkpoints,
                    n_classes,
                    max_batch,
                    rng,
                    seed_head,
                )
                for n_labels, accuracy in curve:
                    rows.append(CurveRow(strategy, int(seed), n_labels, accuracy))
                    if on_row is not None:
                        on_row(rows[-1])
    return rows


def _run_strategy(
    X_pool: np.ndarray,
    y_pool: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    strategy: str,
    checkpoints: list[int],
    n_classes: int,
    max_batch: int | None,
    rng: np.random.Generator,
    make_head: Callable[[], Any],
) -> list[tuple[int, float]]:
    labelled = np.zeros(len(X_pool), dtype=bool)
    head = None
    curve = []
    for target in checkpoints:
        while (n_labelled := int(labelled.sum())) < target:
            n = target - n_labelled if max_batch is None else min(max_batch, target - n_labelled)
            proba = None if head is None else head.predict_proba(X_pool)
            name = "random" if proba is None and strategy in _NEEDS_MODEL else strategy
            picks = rank_pool(
                name,
                n=n,
                labelled_mask=labelled,
                proba=proba,
                embeddings=X_pool,
                n_classes=n_classes,
                rng=rng,
            ).indices
            if len(picks) == 0:  # cannot happen while target <= pool size; never spin
                raise RuntimeError(f"{strategy!r} picked nothing with {n_labelled} labels.")
            labelled[picks] = True
            head = _fit_or_none(make_head(), X_pool[labelled], y_pool[labelled])
        if head is not None:
            accuracy = float(np.mean(head.predict(X_test) == y_test))
        else:  # one class labelled: predicting it everywhere is all the labels support
            accuracy = float(np.mean(y_test == y_pool[labelled][0]))
        curve.append((target, accuracy))
    return curve


def _fit_or_none(head: Any, X: np.ndarray, y: np.ndarray) -> Any | None:
    try:
        return head.fit(X, y)
    except NotEnoughLabels:
        return None


# --- output ------------------------------------------------------------------------------------


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
    import csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out / "curve.csv", out / "curve.png"
    with atomic_writer(csv_path, text=True) as f:
        writer = csv.writer(f)
        writer.writerow(CURVE_COLUMNS)
        for row in rows:
            writer.writerow([row.strategy, row.seed, row.n_labels, f"{row.accuracy:.6f}"])
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
