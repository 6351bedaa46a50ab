"""Fine-tuning: the last step of transfer learning, the backbone's top trained on your labels.

`finetune` unfreezes the top stages of the backbone (the last MBConv stages and the head
conv of an EfficientNet-Lite; batch norm stays in inference mode) and trains them, with a
softmax head, on the labelled images, on CPU. The labels are split three ways, stratified
by class: *train*; *stop*, whose loss decides when to stop (early stopping, best epoch
kept); and *judge*, used for nothing but the verdict. The verdict compares what the app
would actually get: a logistic head (`LogisticHead`) fitted on the train and stop labels
on the frozen features, against the same on the fine-tuned features, both scored on the
judge labels. The caller adopts the fine-tuned backbone only if ``adopted`` is true.

The softmax head starts from the logistic head fitted on the frozen features, so epoch 0
*is* the frozen model and training can only move away from it where the stop split says
it helps. The result is saved as one ``.keras`` file (images to probabilities; Keras'
safe mode loads it, no Lambda layers or custom objects), which `load_backbone` accepts
as a backbone: its features are the input of the last (softmax) layer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labeler.embeddings.efficientnet_lite import VARIANTS, top_stages_first_layer
from labeler.embeddings.finetune_views import (
    Augmentation,
    CachedViews,
    Stopwatch,
    cache_views,
    run_in_batches,
)
from labeler.learning.heads import LogisticHead, NotEnoughLabels
from labeler.storage import atomic_writer

if TYPE_CHECKING:
    import keras

#: ``progress(fraction done, message)``; the message says what runs and how long is left.
Progress = Callable[[float, str], None]
HEAD_LAYER = "finetune_head"
# Shares of the progress bar: caching views, training (by epochs, at most), the verdict.
_CACHE_SHARE, _TRAIN_SHARE = 0.3, 0.65


@dataclass(frozen=True)
class FineTuneSettings:
    """How a fine-tune runs; the defaults are the measured ones (bench/finetune.py).

    Attributes:
        top_stages: MBConv stages trained, counted from the top (with the head conv).
        views: Views per training image: the image itself plus ``views - 1`` augmented.
        max_epochs: Passes over the training images at most.
        patience: Epochs without a lower stop loss before training stops.
        batch_size: Images per gradient step.
        learning_rate: Adam's learning rate.
        dropout: Dropout before the softmax head while training.
        stop_share: Share of each class's labels kept for early stopping.
        judge_share: Share of each class's labels kept for the verdict.
        min_gain: Judge accuracy the fine-tuned model must gain to be adopted.
        min_labels: Fewest labels a fine-tune accepts.
        augmentation: How augmented views are made.
        max_cache_bytes: Bound on the cached trunk outputs; fewer views when exceeded.
        seed: Seed of the split, the crops and the order of examples.
    """

    top_stages: int = 2
    views: int = 4
    max_epochs: int = 15
    patience: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-5
    dropout: float = 0.2
    stop_share: float = 0.2
    judge_share: float = 0.2
    min_gain: float = 0.0
    min_labels: int = 20
    augmentation: Augmentation = field(default_factory=Augmentation)
    max_cache_bytes: int = 1 << 30
    seed: int = 0


@dataclass
class FineTuneResult:
    """A fine-tuned backbone and the verdict on it.

    Attributes:
        feature_model: Images ``(N, S, S, 3)`` in 0..255 to fine-tuned features.
        classifier: ``feature_model`` followed by the trained softmax head.
        classes: The label of each of the classifier's columns.
        frozen_accuracy: Judge accuracy of a logistic head on the frozen features.
        finetuned_accuracy: The same on the fine-tuned features.
        softmax_accuracy: Judge accuracy of the trained softmax head itself.
        adopted: True when the fine-tuned features beat the frozen ones by ``min_gain``.
        reason: One sentence saying why it was or was not adopted.
        epochs: Epochs trained; best_epoch: the one kept (0: none beat the frozen start).
        split: Labels used for (train, stop, judge).
        skipped: (path, reason) of labelled images that could not be read.
        seconds: Time per phase ("views", "train", "verdict").
    """

    feature_model: keras.Model
    classifier: keras.Model
    classes: np.ndarray
    frozen_accuracy: float
    finetuned_accuracy: float
    softmax_accuracy: float
    adopted: bool
    reason: str
    epochs: int
    best_epoch: int
    split: tuple[int, int, int]
    skipped: list[tuple[str, str]]
    seconds: dict[str, float]

    def save(self, path: str | Path) -> Path:
        """Write the classifier as a ``.keras`` file, whole or not at all."""
        path = Path(path)
        with atomic_writer(path, suffix=".keras") as handle, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
            self.classifier.save(handle.name)
        return path


def split_labels(labels: np.ndarray, stop_share: float, judge_share: float,
                 seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of (train, stop, judge), stratified by class; every class keeps one in train.

    Raises:
        NotEnoughLabels: The labels leave the stop or the judge split empty.
    """
    rng = np.random.default_rng(seed)
    train, stop, judge = [], [], []
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        n_judge = min(int(round(len(members) * judge_share)), len(members) - 1)
        n_stop = min(int(round(len(members) * stop_share)), len(members) - 1 - n_judge)
        judge += list(members[:n_judge])
        stop += list(members[n_judge:n_judge + n_stop])
        train += list(members[n_judge + n_stop:])
    if not stop or not judge:
        raise NotEnoughLabels(
            "Fine-tuning needs labels to judge itself by; label a few more images of each "
            "class (a few hundred in all) and try again."
        )
    return (np.sort(np.array(train, np.int64)), np.sort(np.array(stop, np.int64)),
            np.sort(np.array(judge, np.int64)))


def verdict(frozen_accuracy: float, finetuned_accuracy: float, n_judged: int,
            min_gain: float = 0.0, best_epoch: int = 1) -> tuple[bool, str]:
    """Whether to adopt the fine-tuned backbone, and the sentence that says why.

    Adopted only when it is strictly better on the held-out labels by more than
    ``min_gain``: a tie keeps the frozen backbone, which costs no re-embedding. When no
    epoch lowered the stop split's loss (``best_epoch`` 0) the weights are the frozen
    ones, and there is nothing to adopt whatever ``min_gain`` says.
    """
    if best_epoch == 0:
        return False, (
            f"Fine-tuning never lowered the held-out loss, so the backbone is unchanged "
            f"({frozen_accuracy:.1%} on {n_judged} held-out labels); the frozen backbone stays.")
    adopted = finetuned_accuracy > frozen_accuracy + min_gain
    reason = (
        f"The fine-tuned backbone {'beats' if adopted else 'does not beat'} the frozen one on "
        f"{n_judged} held-out labels: {finetuned_accuracy:.1%} against {frozen_accuracy:.1%}"
        + ("." if adopted else "; the frozen backbone stays.")
    )
    return adopted, reason


def _first_trained_layer(backbone: Any, top_stages: int, train_from: str | None) -> str:
    if train_from is not None:
        return train_from
    variant = VARIANTS.get(backbone.spec.name)
    if variant is None:
        raise ValueError(
            f"Fine-tuning {backbone.spec.name} needs the name of its first layer to train "
            "(train_from); only the EfficientNet-Lite backbones know theirs."
        )
    return top_stages_first_layer(variant, top_stages)


def _split_model(feature_model: keras.Model, first_trained: str
                 ) -> tuple[keras.Model, keras.Model, keras.Model]:
    """A private copy of the feature model, and its frozen trunk and trainable top."""
    import keras

    tuned = keras.models.clone_model(feature_model)
    tuned.set_weights(feature_model.get_weights())  # the shared backbone stays untouched
    boundary = tuned.get_layer(first_trained).input
    trunk = keras.Model(tuned.inputs, boundary, name="frozen_trunk")
    top = keras.Model(boundary, tuned.outputs[0], name="trained_top")
    for layer in tuned.layers:
        layer.trainable = False
    for layer in top.layers:
        # Batch norm stays in inference mode: batch statistics of a few hundred labels
        # would replace ImageNet's (Keras' fine-tuning advice).
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    return tuned, trunk, top


def _softmax_weights(head: LogisticHead, n_classes: int) -> list[np.ndarray]:
    coef, intercept = np.asarray(head.coef_), np.asarray(head.intercept_)
    if coef.shape[0] == 1 and n_classes == 2:  # binary: one logit, split symmetrically
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-1, 1]) * intercept / 2
    return [coef.T.astype(np.float32), intercept.astype(np.float32)]


def _judge_accuracy(features: dict[int, np.ndarray], y: np.ndarray, fit: list[int],
                    judge: list[int]) -> float:
    """Accuracy on ``judge`` of a logistic head fitted on ``fit`` (image index -> features)."""
    fit_x, judge_x = np.stack([features[i] for i in fit]), np.stack([features[i] for i in judge])
    if not (np.isfinite(fit_x).all() and np.isfinite(judge_x).all()):
        return 0.0  # training diverged: these features are worth nothing
    head = LogisticHead().fit(fit_x, y[fit])
    return float(np.mean(head.predict(judge_x) == y[judge]))


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _cross_entropy(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None))))


def finetune(backbone: Any, paths: Sequence[str], labels: Sequence[Any],
             settings: FineTuneSettings | None = None, progress: Progress | None = None,
             train_from: str | None = None) -> FineTuneResult:
    """Fine-tune the backbone's top stages on labelled images; judge it on held-out labels.

    Args:
        backbone: A loaded backbone (``spec`` and ``feature_model``); it is not changed.
        paths: The labelled image files.
        labels: Their labels (strings or integers).
        settings: How to train (default `FineTuneSettings()`).
        progress: Called with (fraction done, message with an estimate of time left).
        train_from: Name of the first layer to train; default the first layer of the
            backbone's last ``settings.top_stages`` stages (EfficientNet-Lite only).

    Returns:
        The fine-tuned models and the verdict.

    Raises:
        NotEnoughLabels: Fewer than ``settings.min_labels`` labelled images, fewer than
            two classes, or too few per class to hold some back.
    """
    settings = settings or FineTuneSettings()
    report = progress or (lambda fraction, message: None)
    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} images but {len(labels)} labels.")
    classes, y = np.unique(np.asarray(labels), return_inverse=True)
    if len(paths) < settings.min_labels or len(classes) < 2:
        raise NotEnoughLabels(
            f"Fine-tuning needs at least {settings.min_labels} labelled images of two or "
            f"more classes; there are {len(paths)} of {len(classes)}. Label more first."
        )
    train, stop, judge = split_labels(y, settings.stop_share, settings.judge_share,
                                      settings.seed)
    first = _first_trained_layer(backbone, settings.top_stages, train_from)
    import keras  # after the checks: a refusal needs no TensorFlow

    tuned, trunk, top = _split_model(backbone.feature_model, first)
    watch = Stopwatch()

    # 1. Every view through the frozen trunk, once (augmented views for training only).
    view_bytes = int(np.prod(trunk.outputs[0].shape[1:])) * 2  # float16
    views = max(1, min(settings.views, settings.max_cache_bytes // (view_bytes * len(train))))
    counts = np.ones(len(paths), dtype=np.int64)
    counts[train] = views

    def on_views(done: int, total: int) -> None:
        left = watch.running() / done * (total - done)
        report(_CACHE_SHARE * done / total,
               f"Preparing views of the labelled images: {done} of {total}, about "
               f"{_duration(left)} left before training")

    cached = cache_views(trunk, list(paths), counts, settings.augmentation, settings.seed,
                         settings.batch_size, on_views)
    watch.lap("views")
    skipped = [(str(paths[i]), reason) for i, reason in cached.failed]
    original = cached.original_rows()  # image -> row, readable images only
    train, stop, judge = ([i for i in part if i in original] for part in (train, stop, judge))
    if not (train and stop and judge):
        raise NotEnoughLabels("Too many labelled images could not be read to fine-tune; "
                              f"for example {skipped[0][0]}: {skipped[0][1]}.")

    # 2. A softmax head that starts where the frozen logistic head is, then training.
    frozen = {i: f for i, f in zip(original, run_in_batches(
        top, cached.activations[list(original.values())]), strict=True)}
    start_head = LogisticHead().fit(np.stack([frozen[i] for i in train]), y[train])
    boundary = keras.Input(tuple(trunk.outputs[0].shape[1:]), name="trunk_output")
    features = top(boundary)
    dense = keras.layers.Dense(len(classes), activation="softmax", name=HEAD_LAYER)
    trainer = keras.Model(boundary, dense(
        keras.layers.Dropout(settings.dropout, seed=settings.seed)(features)))
    scorer = keras.Model(boundary, dense(features))  # the same head, without dropout
    dense.set_weights(_softmax_weights(start_head, len(classes)))
    trainer.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                    loss="sparse_categorical_crossentropy")
    epochs, best_epoch = _train(trainer, scorer, cached, y, train, stop, original, settings,
                                watch, report)
    watch.lap("train")

    # 3. The verdict, on labels that neither trained nor stopped the fine-tune.
    report(_CACHE_SHARE + _TRAIN_SHARE, "Comparing the fine-tuned and the frozen backbone")
    fit = sorted(train + stop)
    tuned_of = {i: f for i, f in zip(original, run_in_batches(
        top, cached.activations[list(original.values())]), strict=True)}
    frozen_accuracy = _judge_accuracy(frozen, y, fit, judge)
    tuned_accuracy = _judge_accuracy(tuned_of, y, fit, judge)
    softmax = run_in_batches(scorer, cached.activations[[original[i] for i in judge]])
    softmax_accuracy = float(np.mean(softmax.argmax(axis=1) == y[judge]))
    adopted, reason = verdict(frozen_accuracy, tuned_accuracy, len(judge), settings.min_gain,
                              best_epoch)
    images = keras.Input(tuple(tuned.inputs[0].shape[1:]), name="image")
    classifier = keras.Model(images, dense(tuned(images)), name="finetuned_classifier")
    watch.lap("verdict")
    report(1.0, reason)
    return FineTuneResult(
        feature_model=tuned, classifier=classifier, classes=classes,
        frozen_accuracy=frozen_accuracy, finetuned_accuracy=tuned_accuracy,
        softmax_accuracy=softmax_accuracy, adopted=bool(adopted), reason=reason,
        epochs=epochs, best_epoch=best_epoch, split=(len(train), len(stop), len(judge)),
        skipped=skipped, seconds=dict(watch.seconds),
    )


def _train(trainer: keras.Model, scorer: keras.Model, cached: CachedViews, y: np.ndarray,
           train: list[int], stop: list[int], original: dict[int, int],
           settings: FineTuneSettings, watch: Stopwatch, report: Progress) -> tuple[int, int]:
    """Train with early stopping on the stop split's loss; keep the best epoch's weights.

    Returns:
        (epochs trained, best epoch); best epoch 0 means the start (the frozen model).
    """
    stop_rows = [original[i] for i in stop]

    def stop_loss() -> float:
        proba = run_in_batches(scorer, cached.activations[stop_rows])
        return _cross_entropy(proba, y[stop]) if np.isfinite(proba).all() else np.inf

    views_of = cached.view_rows()
    rng = np.random.default_rng(settings.seed)
    best_loss, best_epoch, best_weights = stop_loss(), 0, trainer.get_weights()
    epoch = 0
    for epoch in range(1, settings.max_epochs + 1):
        # One random view of each training image per epoch, in a random order.
        picked = rng.permutation([rng.choice(views_of[i]) for i in train])
        for start in range(0, len(picked), settings.batch_size):
            rows = np.sort(picked[start:start + settings.batch_size])
            trainer.train_on_batch(cached.activations[rows].astype(np.float32),
                                   y[cached.image_index[rows]])
        loss = stop_loss()
        if loss < best_loss:
            best_loss, best_epoch, best_weights = loss, epoch, trainer.get_weights()
        finished = epoch - best_epoch >= settings.patience or not np.isfinite(loss)
        left = 0 if finished else min(settings.max_epochs - epoch,
                                      settings.patience - (epoch - best_epoch))
        report(_CACHE_SHARE + _TRAIN_SHARE * epoch / settings.max_epochs,
               f"Fine-tuning: epoch {epoch} of at most {settings.max_epochs}, held-out loss "
               f"{loss:.3f} (best {best_loss:.3f}); at most "
               f"{_duration(watch.running() / epoch * left)} left")
        if finished:
            break
    trainer.set_weights(best_weights)
    return epoch, best_epoch
