"""What every response shape is built from: closed models, counts and timestamps."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    model_serializer,
)

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


class KindShape(Shape):
    """A response whose ``KIND_FIELDS`` appear only when the view sets them: the fields a
    multi-label project adds are left out for single-label ones, even where their value
    could be null (``labels: null`` means "not labelled", not "no such field")."""

    KIND_FIELDS: ClassVar[tuple[str, ...]] = ()

    # No return annotation on purpose: pydantic would publish it (Any) as the response's
    # schema; without one the document keeps the model's own.
    @model_serializer(mode="wrap")
    def _leave_out_unset_kind_fields(self, handler: SerializerFunctionWrapHandler):
        data = handler(self)
        for name in self.KIND_FIELDS:
            if name not in self.model_fields_set:
                data.pop(name, None)
        return data
