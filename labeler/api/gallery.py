"""The gallery through the API: filtered pages of images, and labelling many at once."""

from __future__ import annotations

from flask import current_app, request
from flask_login import current_user

from ..gallery import bulk_label as label_selection
from ..gallery import gallery_page, parse_filters
from ..gallery_tags import bulk_tag
from ..jobs.triggers import maybe_submit_retrain
from ..projects import project_by_id
from . import bp, schemas
from .inputs import BulkLabel, BulkTags, ImagesQuery
from .spec import declare


@bp.get("/projects/<id:project_id>/images")
@declare("listImages", (200, schemas.GalleryPage), 404, 409, query=ImagesQuery)
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


@bp.post("/projects/<id:project_id>/bulk-tags")
@declare("bulkTags", (200, schemas.BulkTagsResult), 404, 409, json=BulkTags)
def bulk_tags(project_id: int, json: BulkTags):
    """Change the tags of many images of a multi-label project at once.

    ``add`` and ``remove`` change each image's tags as the gallery shows them (its labelled
    tags, or the model's predicted tags if it is not labelled yet); ``confirm_predictions``
    gives each image exactly its predicted tags. One annotation per image (source
    "gallery"), all in one transaction. A single-label project is a 400 (use bulk-label);
    images or tags the project does not have, a 404; images without predicted tags
    (``confirm_predictions``) or an archived tag, a 409.
    """
    project = project_by_id(project_id)
    ids = list(dict.fromkeys(json.image_ids))  # keeps the order, drops repeats
    changed = bulk_tag(project, ids, current_user, add=json.add or [],
                       remove=json.remove or [], confirm=bool(json.confirm_predictions))
    maybe_submit_retrain(current_app._get_current_object(), project)
    return {"updated": len(changed), "items": [
        {"image_id": image.id, "labels": [tag.name for tag in tags]}
        for image, tags in changed]}
