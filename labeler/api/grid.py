"""Grid mode through the API: a grid of images predicted as one class, and its answer."""

from __future__ import annotations

from flask import current_app
from flask_login import current_user

from ..grid_mode import answer_grid, lease_grid
from ..jobs.triggers import maybe_submit_retrain
from ..projects import class_by_name, project_by_id
from ..rounds import load_head
from . import bp, serialize
from .grid_schemas import Grid, GridAnswer, GridAnswered, GridQuery
from .spec import declare


@bp.get("/projects/<id:project_id>/grid")
@declare("nextGrid", (200, Grid), 404, query=GridQuery)
def next_grid(project_id: int, query: GridQuery):
    """Up to n images the model predicts as one class, leased to the caller for 10 minutes.

    No grid yet (before a trained round, or when no class has enough confident
    predictions) is an empty ``items`` with a ``message``, not an error.
    """
    project = project_by_id(project_id)
    grid = lease_grid(project, current_user, n=query.n)
    head = load_head(project) if grid.images else None
    names = {c.id: c.name for c in project.classes}
    return {"label": grid.label_class.name if grid.label_class else None,
            "items": [serialize.image_item(project, image, head, names)
                      for image in grid.images],
            "message": grid.message}


@bp.post("/projects/<id:project_id>/grid")
@declare("answerGrid", (200, GridAnswered), 404, 409, json=GridAnswer)
def post_grid(project_id: int, json: GridAnswer):
    """Label the confirmed images with the class and release the rejected ones, at once.

    Every id must be leased to the caller (409 otherwise); may start a retrain round.
    """
    project = project_by_id(project_id)
    label_class = class_by_name(project, json.label)
    confirmed, released = answer_grid(project, current_user, label_class,
                                      json.confirm, json.reject)
    if confirmed:
        maybe_submit_retrain(current_app._get_current_object(), project)
    return {"label": label_class.name, "confirmed": confirmed, "released": released}
