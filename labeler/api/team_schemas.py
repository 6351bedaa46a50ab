"""The response shapes of teams: project members and the review queue."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .schemas_base import Fraction, Shape, Timestamp


class Member(Shape):
    user_id: int
    username: str
    role: Literal["annotator", "reviewer", "lead"]


class MemberList(Shape):
    members: list[Member] = Field(description="The project's members, by user name.")


class ReviewItem(Shape):
    annotation_id: int
    image_id: int
    image_url: str
    label: str = Field(description="The class the annotator gave.")
    annotator: str
    labelled_at: Timestamp
    predicted: str | None = Field(description="The model's class, if it has predicted one.")
    confidence: Fraction | None
    suspected_error: bool = Field(description="The last round suspects the label is wrong.")


class ReviewQueue(Shape):
    items: list[ReviewItem] = Field(description="Labels to review, in the order asked for.")
