"""The gallery through the API: filtered pages of images, and labelling many at once."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request
from flask_login import current_user

from ..gallery import (
    MAX_BULK,
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    GalleryFilterError,
    gallery_page,
    parse_filters,
)
from ..gallery import bulk_label as label_selection
from ..jobs.triggers import maybe_submit_retrain
from ..projects import project_by_id
from . import ApiError, bp
from .payload import field, int_arg, json_body


@bp.get("/projects/<int:project_id>/images")
def list_images(project_id: int):
    """A page of the project's images, filtered; follow ``next_cursor`` with ``after=``."""
    project = project_by_id(project_id)
    limit = int_arg("limit", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    try:
        filters = parse_filters(request.args)
        page = gallery_page(project, filters, (request.args.get("after") or "").strip(), limit)
    except GalleryFilterError as exc:
        raise ApiError(400, "Bad request", str(exc)) from exc
    return jsonify(items=page.items, next_cursor=page.next_cursor, total=page.total)


def _image_ids(data: dict[str, Any]) -> list[int]:
    ids = field(data, "image_ids", list)
    if not ids:
        raise ApiError(400, "Bad request", "Field 'image_ids' is empty; select some images.")
    if len(ids) > MAX_BULK:
        raise ApiError(400, "Bad request", f"At most {MAX_BULK} images can be labelled in one "
                       f"request; {len(ids)} were sent. Send them in smaller batches.")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ApiError(400, "Bad request", "Field 'image_ids' must be a list of integers.")
    return list(dict.fromkeys(ids))  # keeps the order, drops repeats


@bp.post("/projects/<int:project_id>/bulk-label")
def bulk_label(project_id: int):
    """Label many images at once: with one class, or each with its predicted class.

    Body: ``{"image_ids": [...], "label": "<class>"}`` or
    ``{"image_ids": [...], "confirm_predictions": true}``. One annotation per image (source
    "gallery"), all in one transaction: either every image is labelled or none is.
    """
    project = project_by_id(project_id)
    data = json_body()
    ids = _image_ids(data)
    label = field(data, "label", str, required=False)
    confirm = field(data, "confirm_predictions", bool, required=False)
    if (label is None) == (not confirm):
        raise ApiError(400, "Bad request", "Send either 'label' (a class name) or "
                       "'confirm_predictions': true, not both and not neither.")
    labelled = label_selection(project, ids, current_user, label=label)
    maybe_submit_retrain(current_app._get_current_object(), project)
    return jsonify(updated=len(labelled), items=[
        {"image_id": image.id, "label": c.name, "label_colour": c.colour}
        for image, c in labelled])
