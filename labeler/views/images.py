"""Serving stored images and thumbnails, by image id only.

No path from the client reaches the file system: the id selects a row, the row's hash
names the file.
"""

from __future__ import annotations

from flask import Blueprint, abort, send_file
from flask_login import login_required

from ..extensions import db
from ..imaging import display_jpeg
from ..models import Image
from ..storage import MEDIA_TYPES, blob_store, extension_for

bp = Blueprint("images", __name__)

CACHE_SECONDS = 7 * 24 * 3600  # content-addressed: the bytes behind an id never change


@bp.route("/<id:image_id>/thumbnail")
@login_required
def thumbnail(image_id: int):
    image = db.session.get(Image, image_id) or abort(404)
    path = blob_store().thumbnail_path(image.sha256)
    if not path.exists():
        abort(404)
    return send_file(path, mimetype="image/jpeg", max_age=CACHE_SECONDS, etag=image.sha256)


# Formats every current browser shows in an <img>; others are converted for display.
BROWSER_FORMATS = {"JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP"}


@bp.route("/<id:image_id>/display")
@login_required
def display(image_id: int):
    """The image as a browser can show it: the original, or a JPEG rendition (e.g. TIFF)."""
    image = db.session.get(Image, image_id) or abort(404)
    if image.format in BROWSER_FORMATS:
        return original(image_id)
    store = blob_store()
    path = store.display_path(image.sha256)
    if not path.exists():
        source = store.image_path(image.sha256, image.format)
        if not source.exists():
            abort(404)
        store.put_display(image.sha256, display_jpeg(source.read_bytes()))
    return send_file(path, mimetype="image/jpeg", max_age=CACHE_SECONDS, etag=image.sha256)


@bp.route("/<id:image_id>/original")
@login_required
def original(image_id: int):
    image = db.session.get(Image, image_id) or abort(404)
    path = blob_store().image_path(image.sha256, image.format)
    if not path.exists():
        abort(404)
    mimetype = MEDIA_TYPES.get(extension_for(image.format), "application/octet-stream")
    return send_file(path, mimetype=mimetype, max_age=CACHE_SECONDS, etag=image.sha256)
