"""Grid mode's request and response shapes (the grid endpoints are in ``labeler.api.grid``)."""

from __future__ import annotations

from pydantic import Field, model_validator

from ..grid_mode import GRID_SIZES
from .inputs import Body, Id, Params, Text
from .schemas import ImageItem
from .schemas_base import Count, Shape


class GridQuery(Params):
    n: int = Field(default=16, ge=GRID_SIZES[0], le=GRID_SIZES[1],
                   description="How many images the grid holds at most.")


class GridAnswer(Body):
    """The annotator's verdict on a grid: which images are the class, which are not."""

    label: Text = Field(description="The grid's class name, as GET /grid gave it.")
    confirm: list[Id] = Field(default=[], max_length=GRID_SIZES[1],
                              json_schema_extra={"uniqueItems": True},
                              description="Images that are the class: labelled with it.")
    reject: list[Id] = Field(default=[], max_length=GRID_SIZES[1],
                             json_schema_extra={"uniqueItems": True}, description=(
        "Images that are not: released, to be labelled one by one in single-image mode. "
        "An image in both lists is a 409."))

    @model_validator(mode="after")
    def _unique(self) -> GridAnswer:
        # What the document states (uniqueItems); an id in both lists is answer_grid's 409.
        for name, ids in (("confirm", self.confirm), ("reject", self.reject)):
            if len(set(ids)) != len(ids):
                raise ValueError(f"Each image id may appear once in '{name}'.")
        return self


class Grid(Shape):
    label: str | None = Field(description="The class every image is predicted as; null when "
                                          "there is no grid (see message).")
    items: list[ImageItem] = Field(description="The leased images, most confident first.")
    message: str = Field(description="Why there is no grid, in a sentence; empty otherwise.")


class GridAnswered(Shape):
    label: str
    confirmed: Count = Field(description="Images labelled with the class.")
    released: Count = Field(description="Images released back to the queue.")
