"""Error pages: a readable sentence, never a stack trace; JSON for API clients."""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from ..errors import AlreadyExists, LabelerError, NotFound, allow_header

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _render(status: int, title: str, detail: str, headers: dict[str, str] | None = None):
    if _wants_json():
        return jsonify(error=title, detail=detail), status, headers or {}
    return (render_template("error.html", status=status, title=title, detail=detail), status,
            headers or {})


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return _render(400, "Form expired", "The form was stale or incomplete (missing CSRF "
                       "token). Reload the page and try again.")

    # Registered by status code, so it also wins over the API blueprint's generic handler:
    # werkzeug's own text ("exceeds the capacity limit") does not say what the limit is.
    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        limit = current_app.config["MAX_UPLOAD_MB"]
        return _render(413, "Upload too large", f"The request is larger than the {limit} MiB "
                       "limit (LABELER_MAX_UPLOAD_MB). Upload fewer or smaller files at a "
                       "time, or import large collections with `labeler import`.")

    # A service's sentence that no view turned into a page of its own: NotFound is the one
    # project-or-404 (``projects.project_by_id``); the API blueprint has its own handler.
    @app.errorhandler(LabelerError)
    def labeler_error(exc: LabelerError):
        if isinstance(exc, NotFound):
            return _render(404, "Not Found", str(exc))
        if isinstance(exc, AlreadyExists):
            return _render(409, "Conflict", str(exc))
        return _render(400, "Bad Request", str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _render(exc.code or 500, exc.name, exc.description or "", allow_header(exc))

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        error = InternalServerError()
        return _render(500, error.name, "Something went wrong on the server; it has been "
                       "logged. Try again, and tell your project lead if it keeps happening.")
