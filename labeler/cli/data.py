"""Data in and out: ``import``, ``export``, ``labels import``, ``backup``, ``restore``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from tqdm import tqdm

from .base import LabelerAppGroup, with_database

commands = LabelerAppGroup("data")  # a holder: its commands are registered at the top
labels_group = LabelerAppGroup("labels", help="Import labels given elsewhere.")


@commands.command("import")
@click.argument("project_name", metavar="PROJECT")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--labels-from-folders", is_flag=True,
              help="Label each image with the name of the folder it is in (creates classes).")
@click.option("--queue", "queued", is_flag=True,
              help="Hand the import to a `labeler worker` (needs LABELER_QUEUE_URL; the "
                   "paths must be visible at the same place on the worker's machine).")
@with_database
def import_command(project_name: str, paths: tuple[Path, ...], labels_from_folders: bool,
                   queued: bool) -> None:
    """Import images from folders (recursively), zip files or single files into PROJECT.

    Every file is checked by decoding it; duplicates (same bytes) are stored once; bad
    files are listed with the reason and the import goes on.
    """
    from ..importer import import_paths
    from ..jobs.pipelines import submit_import
    from ..projects import get_project

    project = get_project(project_name)
    if queued:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if not app.config["QUEUE_URL"]:
            raise click.ClickException(
                "--queue hands the import to `labeler worker` processes, which needs "
                "LABELER_QUEUE_URL (a Redis URL); without it, import here (drop --queue).")
        missing = [str(path) for path in paths if not path.exists()]
        if missing:
            raise click.ClickException(f"No such file or folder: {', '.join(missing)}")
        job = submit_import(app, project, [str(path.resolve()) for path in paths],
                            labels_from_folders)
        click.echo(f"Queued import job {job.id} for {project.name!r}; a `labeler worker` "
                   f"runs it, then embeds the new images. Follow it on the dashboard or "
                   f"at /api/v1/jobs/{job.id}.")
        return
    with tqdm(total=0, unit="file", desc="Importing", file=sys.stderr, disable=None) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = import_paths(project, list(paths), labels_from_folders=labels_from_folders,
                              on_progress=progress)
    for rejected in report.rejected:
        click.echo(f"rejected  {rejected.name}: {rejected.reason}")
    click.echo(report.summary())
    if report.imported:
        click.echo(f"Next: `labeler embed {project.name}` computes their embeddings (a "
                   "running `labeler serve` does it in the background by itself).")


@commands.command("export")
@click.argument("project_name", metavar="PROJECT")
@click.option("--format", "export_format", required=True,
              type=click.Choice(["csv", "jsonl", "folders", "model"]),
              help="csv or jsonl: one row per image; folders: one folder per class (a zip "
                   "when --out ends in .zip); model: the trained classifier as a .keras file.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="File (or directory, for folders) to write.")
@click.option("--include-predictions", is_flag=True,
              help="csv/jsonl: add predicted class and confidence, and unlabelled images.")
@click.option("--val-split", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=None, metavar="FRACTION",
              help="folders: put this share of each class in val/, the rest in train/.")
@click.option("--min-precision", type=click.Choice(["0.8", "0.9", "0.95", "0.98", "0.99"]),
              default=None,
              help="csv/jsonl: export only the auto-tags above the per-class confidence at "
                   "which the active round's cross-validated precision reaches this "
                   "(implies --include-predictions).")
@with_database
def export_command(project_name: str, export_format: str, out: Path,
                   include_predictions: bool, val_split: float | None,
                   min_precision: str | None) -> None:
    """Export PROJECT's labels, images or model; the file appears only when complete."""
    from .. import export
    from ..projects import get_project
    from ..rounds import confidence_thresholds
    from ..storage import blob_store

    project = get_project(project_name)
    if export_format == "model":
        export_model = export.model_exporter()
        if export_model is None:
            raise click.ClickException(export.MODEL_UNAVAILABLE)
        # Names the round and its accuracy: which model a file holds is otherwise invisible.
        click.echo(str(export_model(project, out)))
        return
    thresholds = None
    if min_precision is not None:
        if export_format not in ("csv", "jsonl"):
            raise click.UsageError("--min-precision filters auto-tags: use it with --format "
                                   "csv or jsonl.")
        thresholds = confidence_thresholds(project, float(min_precision))
        include_predictions = True
    if export_format == "csv":
        export.write_csv(project, out, include_predictions=include_predictions,
                         thresholds=thresholds)
    elif export_format == "jsonl":
        export.write_jsonl(project, out, include_predictions=include_predictions,
                           thresholds=thresholds)
    else:
        result = export.write_folders(project, out, blob_store(), val_split=val_split)
        click.echo(f"{result.images} images in {len(result.per_folder)} folders.")
    click.echo(f"Wrote {out}")


@commands.command("backup")
@click.argument("project_name", metavar="PROJECT")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Archive to write (a zip); it appears only when complete.")
@with_database
def backup_command(project_name: str, out: Path) -> None:
    """Write a consistent snapshot of PROJECT (rows, images, vectors, models) to one file.

    Safe while `labeler serve` runs: the archive is one instant of the project.
    """
    from ..backup import backup_project

    report = backup_project(project_name, out)
    counts = report.counts
    click.echo(f"Backed up project {report.project!r} to {report.path}: {counts['image']} "
               f"images, {counts['annotation']} annotations, {counts['model_round']} rounds, "
               f"{counts['vectors']} vectors ({report.size_bytes / 2**20:.1f} MiB).")


@commands.command("restore")
@click.argument("archive", metavar="FILE",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "new_name", metavar="NEW_NAME",
              help="Restore under this name (needed when the project's name is taken).")
@with_database
def restore_command(archive: Path, new_name: str | None) -> None:
    """Bring back a project from a `labeler backup` FILE (checksums are verified first).

    Annotators are matched by username; unknown ones become disabled accounts.
    """
    from ..restore import restore_project

    report = restore_project(archive, new_name)
    counts = report.counts
    click.echo(f"Restored project {report.project!r} (id {report.project_id}): "
               f"{counts['image']} images, {counts['annotation']} annotations, "
               f"{counts['model_round']} rounds, {counts['vectors']} vectors.")
    if report.created_users:
        click.echo(f"Created {len(report.created_users)} disabled accounts for annotators "
                   f"this server did not know ({', '.join(report.created_users)}); they keep "
                   "the label history and cannot log in.")
    else:
        click.echo("Every annotator was matched to an existing account (0 created).")
    for sentence in report.skipped_heads:
        click.echo(sentence)


@labels_group.command("import")
@click.argument("project_name", metavar="PROJECT")
@click.argument("csv_file", metavar="FILE.csv",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--create-classes", is_flag=True,
              help="Create the classes the project does not have yet.")
@with_database
def labels_import(project_name: str, csv_file: Path, create_classes: bool) -> None:
    """Label PROJECT's images from FILE.csv (columns label, and file_name or sha256)."""
    from ..label_import import import_labels
    from ..projects import get_project

    project = get_project(project_name)
    report = import_labels(project, csv_file, create_classes=create_classes)
    for line in report.lines():
        click.echo(line)
    if report.refused:
        raise click.ClickException(
            "Nothing was imported because of the unknown classes above; fix their names in "
            "the file, or rerun with --create-classes to create them.")
