"""The response shape of the embedding map (``GET /projects/<id>/map``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .schemas_base import Count, Shape


class MapClass(Shape):
    id: int
    name: str
    colour: str
    archived: bool


class MapPoints(Shape):
    """Parallel columns, one entry per embedded image."""

    image_id: list[int]
    x: list[float]
    y: list[float]
    label: list[int] = Field(description="Label class id, -1 when unlabelled.")
    predicted: list[int] = Field(description="Predicted class id, -1 when none.")


class Map(Shape):
    method: Literal["pca", "tsne"] = Field(description="The layout these points are in.")
    tsne: Literal["ready", "computing", "failed", "unavailable"] = Field(
        description="The t-SNE layout: ready, being computed (PCA meanwhile), failed (see "
                    "tsne_message), or unavailable (too few images).")
    tsne_message: str
    explained_variance: list[float]
    classes: list[MapClass]
    images: Count
    empty: bool
    message: str
    points: MapPoints
