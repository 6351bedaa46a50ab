"""URL converters shared by the pages and the API."""
from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter

from .models import ID_MAX


def at_most(limit: int) -> str:
    """A regular expression for the decimal numbers 1..``limit`` (no leading zeros)."""
    digits = str(limit)
    shorter = f"[1-9][0-9]{{0,{len(digits) - 2}}}"
    same_length = [digits]
    for i, digit in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = len(digits) - i - 1
            same_length.append(f"{digits[:i]}[{low}-{int(digit) - 1}][0-9]{{{rest}}}")
    return f"(?:{shorter}|{'|'.join(same_length)})"


class IdConverter(IntegerConverter):
    """``<id:name>``: a database id, 1..2**31-1; anything else matches no route (404).

    The range is in the regular expression, not only in ``to_python``: werkzeug records a
    rule whose text matched but whose method did not before it converts the value, so an
    out-of-range id sent with another method would be a 405 instead of a 404.
    """

    regex = at_most(ID_MAX)

    def __init__(self, url_map: Any) -> None:
        super().__init__(url_map, min=1, max=ID_MAX)
