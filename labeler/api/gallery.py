"""The gallery through the API: filtered pages of images, and labelling many at once."""

from __future__ import annotations

from flask import current_app, request
from flask_login import current_user

from ..gallery import bulk_label as label_selection
from ..gallery import gallery_page, parse_filters
from ..jobs.triggers import maybe_submit_retrain
from ..projects import project_by_id
from . import bp, schemas
from .inputs import BulkLabel, ImagesQuery
from .spec import declare


@bp.get("/projects/<id:project_id>/images")
@declare("listImages", (200, schemas.GalleryPage), 404, query=ImagesQuery)
def list_images(project_id: int, query: ImagesQuery):
    """A keyset-paginated, filtered page of the project's images; follow next_cursor with
    after=. A class name the project does not have is a 404."""
    project = project_by_id(project_id)
    # The service reads the filters the views read too (request.args), already checked
    # against ImagesQuery here.
    page = gallery_page(project, parse_filters(request.args), query.after, query.limit)
    return {"items": page.items, "next_cursor": page.next_cursor, "total": page.total}


@bp.post("/projects/<id:project_id>/bulk-label")
@declare("bulkLabel", (200, schemas.BulkLabelResult), 404, 409, json=BulkLabel)
def bulk_label(project_id: int, json: BulkLabel):
    """Label many images at once, with one class or each with its prediction.

    One annotation per image (source "gallery"), all in one transaction: either every
    image is labelled or none is. An image or class the project does not have is a 404;
    images without a prediction (``confirm_predictions``) or an archived class, a 409.
    """
    project = project_by_id(project_id)
    ids = list(dict.fromkeys(json.image_ids))  # keeps the order, drops repeats
    labelled = label_selection(project, ids, current_user, label=json.label)
    maybe_submit_retrain(current_app._get_current_object(), project)
    return {"updated": len(labelled), "items": [
        {"image_id": image.id, "label": c.name, "label_colour": c.colour}
        for image, c in labelled]}
