"""The ``labeler`` command line: click commands run inside the Flask app context.

Commands call the same functions as the web views and background jobs. Errors a user can
fix are printed as one line (``Error: ...``) with exit code 1, never as a traceback.
"""

from __future__ import annotations

import functools
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo
from flask_migrate import cli as migrate_cli
from tqdm import tqdm

from .errors import LabelerError


class LabelerCommand(click.Command):
    """A command whose LabelerError becomes a one-line error and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LabelerError as exc:
            raise click.ClickException(str(exc)) from exc


class LabelerAppGroup(AppGroup):
    command_class = LabelerCommand


LabelerAppGroup.group_class = LabelerAppGroup


def with_database(func: Callable[..., Any]) -> Callable[..., Any]:
    """Apply pending migrations before the command touches the database."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .database import upgrade_database

        upgrade_database(current_app._get_current_object())  # type: ignore[attr-defined]
        return func(*args, **kwargs)

    return wrapper


project_group = LabelerAppGroup("project", help="Create, list and inspect projects.")
user_group = LabelerAppGroup("user", help="Manage users (project leads and annotators).")
token_group = LabelerAppGroup("token", help="Manage API tokens.")
commands = LabelerAppGroup("labeler")


@project_group.command("create")
@click.argument("name")
@click.option("--labels", default="", metavar="A,B,C",
              help="Comma-separated class names, in keyboard-key order (1, 2, 3, ...).")
@click.option("--backbone", default=None, metavar="NAME",
              help="Backbone that embeds the images (default: LABELER_BACKBONE; see "
                   "`labeler backbones`).")
@with_database
def project_create(name: str, labels: str, backbone: str | None) -> None:
    """Create project NAME with its classes."""
    from .projects import create_project, parse_label_list

    project = create_project(name, parse_label_list(labels), backbone=backbone)
    classes = ", ".join(f"{c.key}={c.name}" for c in project.classes) or "no classes yet"
    click.echo(f"Created project {project.name!r} (id {project.id}): {classes}")


@project_group.command("list")
@with_database
def project_list() -> None:
    """List projects with their image and label counts."""
    from .projects import list_projects, project_counts

    projects = list_projects()
    if not projects:
        click.echo("No projects yet. Create one: labeler project create NAME --labels a,b")
        return
    for project in projects:
        counts = project_counts(project)
        click.echo(f"{project.id:>4}  {project.name}  {counts['images']} images, "
                   f"{counts['labelled']} labelled")


@project_group.command("show")
@click.argument("name")
@with_database
def project_show(name: str) -> None:
    """Show project NAME: images, and labelled images per class."""
    from .projects import get_project
    from .reports import project_status

    project = get_project(name)
    status = project_status(project)
    counts = status.counts
    click.echo(f"Project {project.name} (id {project.id})")
    click.echo(f"  images:     {counts['images']}")
    click.echo(f"  labelled:   {counts['labelled']}")
    click.echo(f"  unlabelled: {counts['unlabelled']}")
    click.echo(f"  embedded:   {status.embedded}  ({status.backbone})")
    click.echo(f"  strategy:   {status.strategy}, retrain every {status.retrain_every} labels "
               f"({status.labels_until_next_round} to go)")
    click.echo("  classes:")
    for label_class in project.classes:
        archived = " (archived)" if label_class.archived else ""
        click.echo(f"    [{label_class.key or ' '}] {label_class.name}: "
                   f"{counts['per_class'][label_class.name]} labelled{archived}")
    if status.last_round is not None:
        click.echo(f"  last round: {status.last_round.message or status.last_round.status}")


@project_group.command("set-backbone")
@click.argument("name")
@click.argument("backbone")
@with_database
def project_set_backbone(name: str, backbone: str) -> None:
    """Switch project NAME to BACKBONE; its images are embedded again in the new space."""
    from .project_vectors import set_project_backbone
    from .projects import get_project

    project = get_project(name)
    set_project_backbone(project, backbone)
    click.echo(f"Project {project.name!r} now embeds with {backbone}. Run "
               f"`labeler embed {project.name}` to compute the new embeddings.")


@project_group.command("set")
@click.argument("name")
@click.option("--strategy", metavar="NAME",
              help="How the queue picks the next images: auto (default: cold start, then "
                   "margin with diversity), margin_diverse, margin, entropy, least_confident, "
                   "typical or random.")
@click.option("--retrain-every", type=click.IntRange(1), metavar="N",
              help="Start a retrain round after every N new labels.")
@click.option("--head", type=click.Choice(["logistic", "keras_dense"]),
              help="Classifier head trained on the embeddings.")
@with_database
def project_set(name: str, strategy: str | None, retrain_every: int | None,
                head: str | None) -> None:
    """Change how project NAME learns: strategy, retrain interval, head."""
    from .projects import get_project
    from .training import set_training_options

    project = get_project(name)
    set_training_options(project, strategy=strategy, retrain_every=retrain_every, head=head)
    click.echo(f"Project {project.name!r}: " + ", ".join(
        f"{key}={value}" for key, value in sorted(project.settings.items())
        if key in {"strategy", "retrain_every", "head"}))


@commands.command("retrain")
@click.argument("project_name", metavar="PROJECT")
@with_database
def retrain_command(project_name: str) -> None:
    """Run a retrain round now: fit the head on all labels, auto-tag and re-rank."""
    from .jobs import JobKind, run_inline
    from .models import JobStatus
    from .projects import get_project
    from .training import run_round

    project = get_project(project_name)
    job = run_inline(JobKind.RETRAIN, project.id, run_round)
    if job.status != JobStatus.SUCCEEDED:
        raise click.ClickException(job.message)
    click.echo(job.message)


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
    from .importer import import_paths
    from .jobs.pipelines import submit_import
    from .projects import get_project

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


@commands.command("embed")
@click.argument("project_name", metavar="PROJECT")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1, 1024),
              help="Images per forward pass of the backbone.")
@with_database
def embed_command(project_name: str, batch_size: int) -> None:
    """Compute the embedding of every image of PROJECT that has none yet.

    Safe to interrupt: run it again and it continues where it stopped.
    """
    from .jobs import JobKind, run_inline
    from .models import JobStatus
    from .project_vectors import embed_project
    from .projects import get_project

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

    from .embeddings.resize import prepare_file
    from .imaging import InvalidImage, open_image
    from .project_vectors import get_backbone

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
def simulate_command(folder: Path | None, strategies: str, budget: int, step: int, seeds: int,
                     out: Path, embeddings_npy: str | None, labels_npy: str | None,
                     backbone: str | None) -> None:
    """Replay active learning on labelled data to see what each strategy buys.

    FOLDER holds one sub-folder per class (the oracle). Embeddings are computed with the
    real backbone and cached, so a second run on the same images embeds nothing. Writes
    OUT/curve.csv (strategy,seed,n_labels,accuracy on a held-out split) and OUT/curve.png.
    """
    from .embeddings.registry import known_identity, load_backbone
    from .learning import simulation

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
                                   seeds=range(seeds), max_batch=step)
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
    from .embeddings import available_backbones

    for index, name in enumerate(available_backbones()):
        note = "  (default; weights ship with labeler)" if index == 0 else (
            "  (needs its weights in the Keras cache or a network)")
        click.echo(f"{name}{note}")
    click.echo("Or give the path of your own .keras model file.")


@user_group.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["lead", "annotator"]), default="annotator",
              show_default=True, help="Leads manage projects; annotators label.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from standard input instead of prompting.")
@with_database
def user_create(username: str, role: str, password_stdin: bool) -> None:
    """Create a user who can log in to the web app."""
    from .users import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = create_user(username, password, role)
    click.echo(f"Created {user.role} {user.username!r}.")


@token_group.command("create")
@click.argument("username")
@click.option("--name", default="", help="A note to recognise the token by.")
@with_database
def token_create(username: str, name: str) -> None:
    """Create an API token for USERNAME and print it (shown this once only)."""
    from .users import create_api_token, get_user

    token = create_api_token(get_user(username), name)
    click.echo(token)
    click.echo("Keep it secret: only its hash is stored, so it cannot be shown again. "
               "Send it as 'Authorization: Bearer <token>'.", err=True)


labels_group = LabelerAppGroup("labels", help="Import labels given elsewhere.")


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
@with_database
def export_command(project_name: str, export_format: str, out: Path,
                   include_predictions: bool, val_split: float | None) -> None:
    """Export PROJECT's labels, images or model; the file appears only when complete."""
    from . import export
    from .projects import get_project
    from .storage import blob_store

    project = get_project(project_name)
    if export_format == "model":
        export_model = export.model_exporter()
        if export_model is None:
            raise click.ClickException(export.MODEL_UNAVAILABLE)
        # Names the round and its accuracy: which model a file holds is otherwise invisible.
        click.echo(str(export_model(project, out)))
        return
    if export_format == "csv":
        export.write_csv(project, out, include_predictions=include_predictions)
    elif export_format == "jsonl":
        export.write_jsonl(project, out, include_predictions=include_predictions)
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
    from .backup import backup_project

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
    from .restore import restore_project

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
    from .label_import import import_labels
    from .projects import get_project

    project = get_project(project_name)
    report = import_labels(project, csv_file, create_classes=create_classes)
    for line in report.lines():
        click.echo(line)
    if report.refused:
        raise click.ClickException(
            "Nothing was imported because of the unknown classes above; fix their names in "
            "the file, or rerun with --create-classes to create them.")


@commands.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; 0.0.0.0 for every interface.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=None, type=int,
              help="Worker processes (default: 2 on a machine with 2 cores or more).")
@click.option("--threads", default=4, show_default=True, type=int,
              help="Request threads in each worker process.")
def serve(host: str, port: int, workers: int | None, threads: int) -> None:
    """Serve the web app with a production WSGI server (gunicorn: processes × threads)."""
    from .server import serve as run_server

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    run_server(app, host, port, workers, threads)


@commands.command("worker")
@click.option("--burst", is_flag=True, help="Exit once the queues are empty.")
@click.option("--queues", default=None, metavar="Q1,Q2",
              help="Queues to take jobs from, in priority order (default: "
                   "labeler-retrain,labeler-import,labeler-export,labeler-embed).")
@with_database
def worker_command(burst: bool, queues: str | None) -> None:
    """Run jobs from the Redis queue at LABELER_QUEUE_URL (start any number, anywhere)."""
    from .jobs import runner
    from .jobs.rq.backend import DEFAULT_QUEUES
    from .jobs.rq.worker import LabelerWorker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config["QUEUE_URL"]:
        raise click.ClickException(
            "LABELER_QUEUE_URL is not set, so the server runs jobs itself and there is "
            "nothing for a worker to do. Set it to a Redis URL (redis://host:6379/0) here "
            "and for the server.")
    backend = runner(app)
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else DEFAULT_QUEUES
    worker = LabelerWorker([backend.queue(name) for name in names],  # type: ignore[attr-defined]
                           connection=backend.connection)  # type: ignore[attr-defined]
    where = app.config["QUEUE_URL"].rpartition("@")[2]  # never print a password
    click.echo(f"labeler worker {worker.name} on {', '.join(names)} at {where}")
    worker.work(burst=burst, logging_level=app.config["LOG_LEVEL"])


DEMO_PROJECT = "demo"
DEMO_USER = "demo"


@click.command("demo", cls=LabelerCommand)
@click.option("--home", type=click.Path(path_type=Path), default=Path("labeler-demo"),
              show_default=True, help="Data directory of the demo (kept apart from real data).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Prepare the demo project, then exit.")
def demo(home: Path, host: str, port: int, no_serve: bool) -> None:
    """Create a demo project and a demo lead, print the login, and serve the app."""
    from . import create_app
    from .database import upgrade_database
    from .demo import prepare_demo

    app = create_app({"HOME": home})
    upgrade_database(app)
    password = secrets.token_urlsafe(9)
    with app.app_context():
        summary = prepare_demo(DEMO_PROJECT, DEMO_USER, password)
    click.echo(summary)
    click.echo(f"Log in as {DEMO_USER!r} with password {password!r}")
    if not no_serve:
        from .server import serve as run_server

        run_server(app, host, port)


def init_app(app: Flask) -> None:
    """Register the commands on ``app.cli`` (so ``flask --app labeler`` has them too)."""
    for command in (project_group, user_group, token_group, labels_group,
                    *commands.commands.values()):
        app.cli.add_command(command)


def _create_app_for_cli() -> Flask:
    from . import create_app

    return create_app()


@click.group(name="labeler", cls=click.Group)
@click.version_option(package_name="labeler", prog_name="labeler")
@click.pass_context
def main(ctx: click.Context) -> None:
    """labeler: active-learning image labelling.

    Settings come from LABELER_* environment variables (see the README); the data
    directory is LABELER_HOME (default ./labeler-data).
    """
    # AppGroup commands build the app lazily through ScriptInfo, so `--help` stays instant.
    ctx.obj = ScriptInfo(create_app=_create_app_for_cli, set_debug_flag=False,
                         load_dotenv_defaults=False)


for _command in (project_group, user_group, token_group, labels_group,
                 *commands.commands.values(), demo):
    main.add_command(_command)
main.add_command(migrate_cli.db, "db")
