"""The gallery (thumbnails, filters, bulk labelling) and the page of one image.

The gallery renders its first page on the server; its script loads further pages from
``GET /api/v1/projects/<id>/images`` and labels through ``POST .../bulk-label``.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import login_required

from ..gallery import (
    PAGE_SIZE,
    GalleryFilterError,
    GalleryFilters,
    GalleryPage,
    gallery_page,
    has_images,
    image_of,
    label_history,
    parse_filters,
    pixelated,
)
from ..projects import project_by_id
from ..rounds import latest_round

bp = Blueprint("gallery", __name__)


@bp.route("/<id:project_id>/gallery")
@login_required
def gallery(project_id: int):
    """Thumbnails of the project's images, filtered by the query string."""
    project = project_by_id(project_id)
    error = ""
    try:
        filters = parse_filters(request.args)
        page = gallery_page(project, filters, "", PAGE_SIZE)
    except GalleryFilterError as exc:
        # A bad filter (e.g. a hand-edited URL) shows the sentence and an empty grid.
        error = str(exc)
        filters = GalleryFilters()
        page = GalleryPage(items=[], next_cursor=None, total=0)
    classes = [{"name": c.name, "colour": c.colour, "archived": c.archived}
               for c in project.classes]
    return render_template(
        "gallery.html", project=project, filters=filters, page=page, error=error,
        classes=classes, active_classes=[c for c in classes if not c["archived"]],
        has_images=has_images(project), has_round=latest_round(project) is not None,
        query_args=filters.query_args(), page_size=PAGE_SIZE)


@bp.route("/<id:project_id>/images/<id:image_id>")
@login_required
def image_detail(project_id: int, image_id: int):
    """One image: the image itself, its metadata, the model's view, and its label history."""
    project = project_by_id(project_id)
    image = image_of(project, image_id)
    return render_template("image_detail.html", project=project, image=image,
                           history=label_history(image), pixelated=pixelated(image))
