"""``labeler project ...``: create, list, show projects and change how they learn."""

from __future__ import annotations

import click

from .base import LabelerAppGroup, with_database

project_group = LabelerAppGroup("project", help="Create, list and inspect projects.")


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
    from ..projects import create_project, parse_label_list

    project = create_project(name, parse_label_list(labels), backbone=backbone)
    classes = ", ".join(f"{c.key}={c.name}" for c in project.classes) or "no classes yet"
    click.echo(f"Created project {project.name!r} (id {project.id}): {classes}")


@project_group.command("list")
@with_database
def project_list() -> None:
    """List projects with their image and label counts."""
    from ..projects import list_projects, project_counts

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
    from ..finetuning import finetune_record, pending_backbone
    from ..projects import get_project
    from ..reports import learning_curve, outlook, project_status

    project = get_project(name)
    status = project_status(project)
    hint = outlook(status.active_round, learning_curve(project))
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
    if hint is not None:
        click.echo(f"  auto-tag accuracy: {hint['accuracy']:.1%} (95 % interval "
                   f"{hint['low']:.1%}-{hint['high']:.1%}, {hint['n']} cross-validated labels)")
        click.echo(f"  next 100 labels: {hint['note']}")
    if (record := finetune_record(project)) is not None:
        waiting = (" Its embeddings are not complete yet; `labeler finetune --resume` "
                   "finishes them." if pending_backbone(project) else "")
        click.echo(f"  fine-tune:  {record['reason']}{waiting}")


@project_group.command("set-backbone")
@click.argument("name")
@click.argument("backbone")
@with_database
def project_set_backbone(name: str, backbone: str) -> None:
    """Switch project NAME to BACKBONE; its images are embedded again in the new space."""
    from ..project_vectors import set_project_backbone
    from ..projects import get_project

    project = get_project(name)
    set_project_backbone(project, backbone)
    click.echo(f"Project {project.name!r} now embeds with {backbone}. Run "
               f"`labeler embed {project.name}` to compute the new embeddings.")


@project_group.command("set")
@click.argument("name")
@click.option("--strategy", metavar="NAME",
              help="How the queue picks the next images: auto (default: cold start, then "
                   "margin with diversity), margin_diverse, margin, entropy, least_confident, "
                   "typical, random, or the coverage cold starts probcover, maxherding, "
                   "typiclust.")
@click.option("--retrain-every", type=click.IntRange(1), metavar="N",
              help="Start a retrain round after every N new labels.")
@click.option("--head", type=click.Choice(["pseudo_label", "self_training", "logistic",
                                           "keras_dense"]),
              help="Classifier head trained on the embeddings (default pseudo_label: the "
                   "labels plus pseudo-labels from the unlabelled images).")
@with_database
def project_set(name: str, strategy: str | None, retrain_every: int | None,
                head: str | None) -> None:
    """Change how project NAME learns: strategy, retrain interval, head."""
    from ..projects import get_project
    from ..training import set_training_options

    project = get_project(name)
    set_training_options(project, strategy=strategy, retrain_every=retrain_every, head=head)
    click.echo(f"Project {project.name!r}: " + ", ".join(
        f"{key}={value}" for key, value in sorted(project.settings.items())
        if key in {"strategy", "retrain_every", "head"}))
