"""Reading JSON request bodies and query strings with clear 400s."""

from __future__ import annotations

from typing import Any

from flask import request

from . import ApiError


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 saying what is wrong with it."""
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "Bad request", "The body must be JSON with Content-Type: "
                       "application/json.")
    if not isinstance(data, dict):
        raise ApiError(400, "Bad request", "The JSON body must be an object.")
    return data


def field(data: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    """``data[name]`` checked to be of ``kind`` (a 400 names the field otherwise)."""
    if name not in data or data[name] is None:
        if required:
            raise ApiError(400, "Bad request", f"Missing field {name!r}.")
        return None
    value = data[name]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ApiError(400, "Bad request", f"Field {name!r} must be an integer.")
    if kind is not int and not isinstance(value, kind):
        raise ApiError(400, "Bad request", f"Field {name!r} must be a {kind.__name__}.")
    return value


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """An integer query-string argument within [low, high]."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "Bad request",
                       f"Query argument {name!r} must be an integer.") from None
    if not low <= value <= high:
        raise ApiError(400, "Bad request", f"Query argument {name!r} must be {low}–{high}.")
    return value
