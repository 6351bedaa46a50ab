"""``/favicon.ico``: browsers and other clients ask for it on every site, logged in or not."""

from __future__ import annotations

from flask import Blueprint, current_app, send_from_directory

bp = Blueprint("favicon", __name__)

CACHE_SECONDS = 7 * 24 * 3600


@bp.route("/favicon.ico")
def favicon():
    """The ICO drawn by docs/make_favicon.py (pages link the SVG version)."""
    return send_from_directory(current_app.static_folder or "", "favicon.ico",
                               mimetype="image/vnd.microsoft.icon", max_age=CACHE_SECONDS)
