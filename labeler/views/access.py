"""Who may see what: decorators for the HTML views."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import abort
from flask_login import current_user, login_required

from ..membership import can_lead


def lead_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Anonymous users go to the login page; others get 403 unless they lead.

    On a project's route a project's lead members pass as well as global leads; elsewhere
    (users, new projects) only global leads do. Non-members never get here: the project
    guard (labeler.membership) has answered 404 already.
    """

    @functools.wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not can_lead(current_user, kwargs.get("project_id")):
            abort(403, "Only project leads can open this page or do this.")
        return view(*args, **kwargs)

    return wrapper
