"""Reading JSON request bodies and query strings with clear 400s."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from . import ApiError

# The largest JSON body any endpoint needs (a bulk label of 500 ids) is a few kB; the
# request limit (LABELER_MAX_UPLOAD_MB) is sized for image uploads, far too big to parse.
JSON_MAX_BYTES = 2**20
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 saying what is wrong with it (413: too large).

    An oversized body is refused from its Content-Length before a byte is read or parsed;
    one sent without a length (chunked) is cut off at the same size while it is read.
    """
    length = request.content_length
    if length is not None and length > JSON_MAX_BYTES:
        raise ApiError(413, "Payload too large",
                       f"The JSON body is {length:,} bytes; at most {JSON_MAX_BYTES:,} bytes "
                       "are accepted. Send smaller batches.")
    limit = request.max_content_length
    request.max_content_length = JSON_MAX_BYTES if limit is None else min(limit,
                                                                          JSON_MAX_BYTES)
    if not request.is_json:
        raise ApiError(400, "Bad request", "The body must be JSON with Content-Type: "
                       "application/json.")
    try:
        data = json.loads(request.get_data())
    except (ValueError, RecursionError) as exc:  # bad syntax or UTF-8, absurd nesting
        raise ApiError(400, "Bad request", f"The body is not valid JSON: {exc}.") from None
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
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)
                        or not INT64_MIN <= value <= INT64_MAX):  # SQLite's integer range
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
