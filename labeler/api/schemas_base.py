"""What every response shape is built from: closed models, counts and timestamps."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from ..models import rfc3339

Count = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]

#: Every timestamp the API emits: UTC with its offset (RFC 3339), whatever the database
#: handed back (SQLite: naive UTC).
Timestamp = Annotated[
    datetime,
    PlainSerializer(rfc3339, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class Shape(BaseModel):
    """A response object: closed, and validated as the view built it."""

    model_config = ConfigDict(extra="forbid")
