"""Who may see what: decorators for the HTML views."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import abort
from flask_login import current_user, login_required


def lead_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Anonymous users go to the login page; annotators get 403; leads pass."""

    @functools.wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_lead:
            abort(403, "Only project leads can open this page or do this.")
        return view(*args, **kwargs)

    return wrapper
