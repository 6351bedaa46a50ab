"""The JSON API under ``/api/v1``: one blueprint, one error format.

Authentication: ``Authorization: Bearer <token>`` (``labeler token create``), or the
browser session, in which case state-changing requests must carry the session's CSRF token
in an ``X-CSRFToken`` header. Errors are ``{"error": ..., "detail": ...}`` with the status
that fits (400, 401, 403, 404, 409, 413); bad input never gives a 500.
"""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from werkzeug.exceptions import BadRequest, HTTPException
from wtforms import ValidationError

from ..errors import AlreadyExists, Conflict, Forbidden, LabelerError, NotFound, allow_header
from ..extensions import csrf
from ..jobs import JobAlreadyRunning
from ..queue import LeaseConflict
from ..users import carries_valid_token

bp = Blueprint("api", __name__)


class ApiError(Exception):
    """An error answered as JSON with ``status``."""

    def __init__(self, status: int, error: str, detail: str = "") -> None:
        super().__init__(detail or error)
        self.status, self.error, self.detail = status, error, detail


STATUS_OF = ((NotFound, 404, "Not found"), (LeaseConflict, 409, "Conflict"),
             (JobAlreadyRunning, 409, "Conflict"), (AlreadyExists, 409, "Conflict"),
             (Conflict, 409, "Conflict"), (Forbidden, 403, "Forbidden"),
             (LabelerError, 400, "Bad request"))

# The largest JSON body any endpoint needs (a bulk label of 500 ids) is a few kB; the
# request limit (LABELER_MAX_UPLOAD_MB) is sized for image uploads, far too big to parse.
JSON_MAX_BYTES = 2**20


@bp.before_request
def authenticate() -> None:
    if request.endpoint == "api.openapi":  # the OpenAPI document is public
        return
    if not current_user.is_authenticated:
        raise ApiError(401, "Unauthorized", "Log in, or send 'Authorization: Bearer <token>' "
                       "(create one with `labeler token create USERNAME`).")
    if request.method not in {"GET", "HEAD", "OPTIONS"} and not carries_valid_token(request):
        try:
            validate_csrf(request.headers.get("X-CSRFToken", ""))
        except ValidationError as exc:
            raise ApiError(400, "CSRF token missing or invalid",
                           f"{exc} Send the page's CSRF token in an X-CSRFToken header.") from exc
    # A JSON body is parsed once here. The JSON content type with no body at all is what
    # fetch() helpers send on a GET or a bodiless POST (ours: static/api.js), not an error;
    # a view that needs a body says so through its declaration.
    if request.is_json and (request.content_length or "chunked" in
                            request.headers.get("Transfer-Encoding", "").lower()):
        read_json_body()


def read_json_body() -> None:
    """Parse a JSON body once, with clear errors; the views' models then validate it.

    An oversized body is refused from its Content-Length before a byte is read or parsed
    (413); one sent without a length (chunked) is cut off at the same size while it is
    read. Absurd nesting is a 400, not a RecursionError. Flask caches the parsed body.
    """
    length = request.content_length
    if length is not None and length > JSON_MAX_BYTES:
        raise ApiError(413, "Payload too large",
                       f"The JSON body is {length:,} bytes; at most {JSON_MAX_BYTES:,} bytes "
                       "are accepted. Send smaller batches.")
    limit = request.max_content_length
    request.max_content_length = JSON_MAX_BYTES if limit is None else min(limit,
                                                                          JSON_MAX_BYTES)
    try:
        request.get_json()
    except (BadRequest, ValueError, RecursionError):  # bad syntax or UTF-8, deep nesting
        raise ApiError(400, "Bad request", "The body is not valid JSON; send a JSON "
                       "object.") from None


def require_lead() -> None:
    """Refuse with 403 unless the caller is a project lead."""
    if not current_user.is_lead:
        raise ApiError(403, "Forbidden", "Only project leads can do this.")


@bp.errorhandler(ApiError)
def api_error(exc: ApiError):
    return jsonify(error=exc.error, detail=exc.detail), exc.status


@bp.errorhandler(LabelerError)
def labeler_error(exc: LabelerError):
    for kind, status, title in STATUS_OF:
        if isinstance(exc, kind):
            return jsonify(error=title, detail=str(exc)), status
    return jsonify(error="Bad request", detail=str(exc)), 400  # pragma: no cover


@bp.errorhandler(CSRFError)
def csrf_error(exc: CSRFError):
    return jsonify(error="CSRF token missing or invalid", detail=exc.description), 400


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    return jsonify(error=exc.name, detail=exc.description or ""), exc.code or 500, allow_header(exc)


def init_app(app: Flask) -> None:
    from . import (  # noqa: F401 - routes register on import
        dashboard,
        embedding_map,
        exports,
        gallery,
        labelling,
        openapi,
        projects,
    )
    csrf.exempt(bp)  # checked in authenticate(), only for session-authenticated requests
    app.register_blueprint(bp, url_prefix="/api/v1")
