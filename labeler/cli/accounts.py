"""Accounts: ``labeler user create`` and ``labeler token create``."""

from __future__ import annotations

import sys

import click

from .base import LabelerAppGroup, with_database

user_group = LabelerAppGroup("user", help="Manage users (project leads and annotators).")
token_group = LabelerAppGroup("token", help="Manage API tokens.")


@user_group.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["lead", "annotator"]), default="annotator",
              show_default=True, help="Leads manage projects; annotators label.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from standard input instead of prompting.")
@with_database
def user_create(username: str, role: str, password_stdin: bool) -> None:
    """Create a user who can log in to the web app."""
    from ..users import create_user

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
    from ..users import create_api_token, get_user

    token = create_api_token(get_user(username), name)
    click.echo(token)
    click.echo("Keep it secret: only its hash is stored, so it cannot be shown again. "
               "Send it as 'Authorization: Bearer <token>'.", err=True)
