"""One declaration per endpoint: spectree validates requests and writes the OpenAPI document.

Each view is decorated with :func:`declare`, naming the pydantic models of its query
string, JSON body or form (``labeler.api.inputs``) and of its responses
(``labeler.api.schemas``). Before the view runs, spectree validates the request against
them; a request that does not fit gets our one error format, a 400 whose sentence names
the field (never pydantic's raw dump). A JSON response the view returns is validated and
serialised by its model (so every timestamp is UTC with its offset); a response that does
not fit is a bug and fails loudly. Downloads and other ready-made ``Response`` objects
pass through untouched: spectree would otherwise read a streamed export into memory.

Path ids use the ``id`` converter (1..2**31-1, PostgreSQL's ``integer``): a larger or zero
id matches no route and is a 404, never an integer the database cannot hold.
``document()`` is the OpenAPI 3.1 document at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import Response as FlaskResponse
from flask import request
from pydantic import BaseModel, ValidationError
from spectree import Response, SpecTree
from spectree.plugins.flask_plugin import FlaskPlugin

from ..models import ID_MAX
from . import ApiError, require_lead
from .schemas import Error

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
#: Errors every operation can answer: 401 without credentials; 400 for a request that
#: does not fit the document (or, from a browser session, lacks its CSRF token).
COMMON_ERRORS = (400, 401)
ERROR_TEXT = {
    400: "Bad input: a field that does not fit this document (the detail names it), "
         "malformed JSON, or (browser sessions) a missing X-CSRFToken header.",
    401: "Not logged in and no valid bearer token.",
    403: "Only project leads can do this.",
    404: "No such project, image, class, annotation or job.",
    409: "A state conflict: the image is leased to someone else, a job of this kind is "
         "already running, the name is taken, or the images have no prediction yet.",
    413: "The request is larger than the server accepts.",
}
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": ID_MAX}


class Plugin(FlaskPlugin):
    """spectree's Flask plugin, with our path converter and streamed responses."""

    def parse_path(self, route: Any, descriptions: Mapping[str, str] | None) -> tuple[str, list]:
        path, parameters = super().parse_path(route, descriptions)
        for parameter in parameters:
            if parameter["schema"] is None:  # the `id` converter, unknown to spectree
                parameter["schema"] = dict(ID_SCHEMA)
        return path, parameters

    def validate_response(self, resp: Any, resp_model: Any, skip_validation: bool,
                          force_resp_serialize: bool) -> Any:
        if isinstance(resp, FlaskResponse):  # a download: stream it as it is
            return resp, None
        return super().validate_response(resp, resp_model, skip_validation,
                                         force_resp_serialize)


spec = SpecTree(backend=Plugin, mode="strict", validation_error_status=400,
                validation_error_model=Error, naming_strategy=lambda model: model.__name__,
                nested_naming_strategy=lambda _parent, child: child,
                title="labeler API", version="1")


def _name(location: tuple[Any, ...]) -> str:
    """``('image_ids', 0)`` → ``image_ids[0]``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def sentence(error: ValidationError, where: str, model: type[BaseModel] | None = None) -> str:
    """What is wrong with a request, naming the field, and what to do next.

    pydantic's messages start with the kind of thing ("Input should be a valid integer",
    "String should have at least 1 character"); the field's name takes that place.
    """
    parts = []
    for problem in error.errors(include_url=False)[:3]:
        name, message = _name(problem["loc"]), problem["msg"].removeprefix("Value error, ")
        if not name:
            parts.append(message if message.endswith(".") else message + ".")
        elif problem["type"] == "missing":
            parts.append(f"Missing {where} {name!r}.")
        elif problem["type"] == "extra_forbidden":
            parts.append(f"The {where} {name!r} is not one this request takes.")
        elif problem["type"] == "string_pattern_mismatch" and _described(model, problem):
            parts.append(f"{where[0].upper()}{where[1:]} {name!r} must be "
                         f"{_described(model, problem)}")
        else:
            first, _, rest = message.partition(" ")
            text = rest if first in KINDS and rest else f"is invalid: {message}"
            text = text.replace(" after validation", "").rstrip(".")
            parts.append(f"{where[0].upper()}{where[1:]} {name!r} {text}.")
    return " ".join(parts) + " See /api/v1/openapi.json for what this request accepts."


def _described(model: type[BaseModel] | None, problem: Any) -> str:
    """A pattern's meaning in words (its field's description) rather than the regex."""
    field = model.model_fields.get(str(problem["loc"][0])) if model else None
    description = (field.description or "") if field else ""
    return description[0].lower() + description[1:] if description else ""


KINDS = {"Input", "String", "List", "Value", "Dictionary", "Tuple", "Set", "Number"}


def _check_json_body() -> None:
    """A JSON object, or a 400 that says so (the size limit is checked in ``authenticate``)."""
    if not request.is_json:
        raise ApiError(400, "Bad request", "The body must be JSON with Content-Type: "
                       "application/json.")
    try:
        data = request.get_json(silent=False)
    except Exception as exc:  # werkzeug's BadRequest wraps the decoding error
        raise ApiError(400, "Bad request", "The body is not valid JSON; send a JSON "
                       "object.") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "Bad request", "The JSON body must be an object.")


def declare(operation_id: str, ok: tuple[int, type[BaseModel] | None], *errors: int,
            query: type[BaseModel] | None = None, json: type[BaseModel] | None = None,
            form: type[BaseModel] | None = None,
            lead: bool = False) -> Callable[[Callable], Callable]:
    """Validate a view's request against its models and publish them in the document.

    Args:
        operation_id: the operation's id in the document.
        ok: the success status and its response model (None: not JSON, see ``document``).
        *errors: the error statuses it can answer besides 400 and 401.
        query, json, form: the request's models, each validated before the view runs and
            handed to it as the keyword argument of that name.
        lead: leads only: an annotator gets 403 before the request is validated.
    """
    status, model = ok
    codes = {f"HTTP_{code}": Error
             for code in sorted({*COMMON_ERRORS, *errors, *((403,) if lead else ())})}
    where = {m.__name__: (kind, m) for m, kind in ((query, "query argument"), (json, "field"),
                                                   (form, "form field")) if m is not None}

    def before(req: Any, resp: Any, error: ValidationError | None, *_: Any) -> None:
        if lead:
            require_lead()
        if json is not None and req.method not in ("GET", "DELETE"):
            _check_json_body()
        if form is not None and req.mimetype != "multipart/form-data":
            raise ApiError(400, "Bad request", "Send the files as multipart/form-data.")
        if error is not None:
            kind, model = where.get(error.title, ("field", None))
            raise ApiError(400, "Bad request", sentence(error, kind, model))

    def after(req: Any, resp: Any, error: ValidationError | None, *_: Any) -> None:
        if error is not None:  # a bug: the view answered what the document does not say
            log.error("%s %s answered outside its schema: %s", req.method, req.path, error)
            raise RuntimeError(f"response of {operation_id} does not fit its schema")

    return spec.validate(query=query, json=json, form=form,
                         resp=Response(**{f"HTTP_{status}": model}, **codes),
                         operation_id=operation_id, before=before, after=after,
                         force_resp_serialize=True)


def _without_prefix(paths: dict[str, Any]) -> dict[str, Any]:
    return {path.removeprefix(PREFIX): item for path, item in paths.items()}


def document(extra: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``/api/v1`` (a fresh copy; ``extra`` may amend it)."""
    doc = copy.deepcopy(spec.spec)
    doc["paths"] = _without_prefix(doc["paths"])
    doc["servers"] = [{"url": PREFIX}]
    doc["info"]["description"] = (
        "Active-learning image labelling. Errors are JSON {\"error\", \"detail\"} with the "
        "status that fits; the detail is a sentence naming the field at fault. Unknown "
        "fields and query arguments are refused (400). Every timestamp is UTC with its "
        "offset (RFC 3339).")
    doc["security"] = [{"bearerToken": []}, {"session": [], "csrfToken": []}]
    doc["components"]["securitySchemes"] = {
        "bearerToken": {"type": "http", "scheme": "bearer",
                        "description": "A token from `labeler token create USERNAME`."},
        "session": {"type": "apiKey", "in": "cookie", "name": "session",
                    "description": "The browser's login session."},
        "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                      "description": "With a session: the page's CSRF token, required on "
                                     "POST and DELETE."},
    }
    doc.pop("tags", None)
    for item in doc["paths"].values():
        for operation in item.values():
            operation.pop("tags", None)
            for code, response in operation["responses"].items():
                if int(code) in ERROR_TEXT:
                    response["description"] = ERROR_TEXT[int(code)]
    if extra is not None:
        extra(doc)
    return doc
