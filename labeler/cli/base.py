"""What every ``labeler`` command shares: one-line errors, migrations first."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from ..errors import LabelerError


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
        from ..database import upgrade_database

        upgrade_database(current_app._get_current_object())  # type: ignore[attr-defined]
        return func(*args, **kwargs)

    return wrapper
