"""``labeler project member ...``: who belongs to a project, with which role."""

from __future__ import annotations

import click

from .base import LabelerAppGroup, with_database

ROLE_HELP = ("annotator: labels the project; reviewer: also reviews labels; lead: also "
             "manages its members, classes, uploads, training and exports.")

member_group = LabelerAppGroup("member", help="Add, remove and list a project's members.")


@member_group.command("add")
@click.argument("project")
@click.argument("username")
@click.option("--role", type=click.Choice(["annotator", "reviewer", "lead"]),
              default="annotator", show_default=True, help=ROLE_HELP)
@with_database
def member_add(project: str, username: str, role: str) -> None:
    """Make USERNAME a member of PROJECT with ROLE (or change their role)."""
    from ..membership import set_member, user_by_name
    from ..projects import get_project

    found = get_project(project)
    set_member(found, user_by_name(username), role)
    click.echo(f"{username} is now {role} of project {found.name!r}.")


@member_group.command("remove")
@click.argument("project")
@click.argument("username")
@with_database
def member_remove(project: str, username: str) -> None:
    """Take USERNAME out of PROJECT (global leads still see every project)."""
    from ..membership import remove_member, user_by_name
    from ..projects import get_project

    found = get_project(project)
    remove_member(found, user_by_name(username))
    click.echo(f"{username} is no longer a member of project {found.name!r}.")


@member_group.command("list")
@click.argument("project")
@with_database
def member_list(project: str) -> None:
    """List PROJECT's members and their roles."""
    from ..membership import members
    from ..projects import get_project

    found = get_project(project)
    rows = members(found)
    if not rows:
        click.echo(f"Project {found.name!r} has no members; only global leads see it. Add "
                   f"one: labeler project member add {found.name!r} USERNAME --role annotator")
    for member in rows:
        click.echo(f"{member.user.username}  {member.role}")
