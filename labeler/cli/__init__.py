"""The ``labeler`` command line: click commands run inside the Flask app context.

Commands call the same functions as the web views and background jobs, grouped by
concern: ``projects``, ``data`` (in and out), ``learning``, ``accounts``, ``running``.
Errors a user can fix are printed as one line (``Error: ...``) with exit code 1, never as
a traceback (``base``). Every command imports what it needs inside its body, so
``labeler --help`` loads neither TensorFlow nor scikit-learn and stays instant.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import ScriptInfo
from flask_migrate import cli as migrate_cli

from . import accounts, data, learning, projects, running

#: Every command and group, in the order ``labeler --help`` lists them.
COMMANDS: list[click.Command] = [
    projects.project_group, accounts.user_group, accounts.token_group, data.labels_group,
    *learning.commands.commands.values(), *data.commands.commands.values(),
    *running.commands.commands.values()]


def init_app(app: Flask) -> None:
    """Register the commands on ``app.cli`` (so ``flask --app labeler`` has them too)."""
    for command in COMMANDS:
        app.cli.add_command(command)


def _create_app_for_cli() -> Flask:
    from .. import create_app

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


for _command in (*COMMANDS, running.demo):
    main.add_command(_command)
main.add_command(migrate_cli.db, "db")
