"""Response headers that keep browsers safe, and rate limits on logging in.

- ``X-Content-Type-Options: nosniff`` on every response, so an uploaded file is never
  sniffed into HTML or script;
- a Content-Security-Policy on every page: scripts only from our own static files (no
  inline script can run, so injected markup stays inert), no plugins, no framing;
- ``Referrer-Policy: same-origin``;
- login attempts limited per client address (Flask-Limiter), against password guessing.
  With ``QUEUE_URL`` set the attempts are counted in that Redis, so the limit holds across
  gunicorn workers and hosts; without it, each process counts its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, current_app, has_app_context

from .extensions import limiter

# A login waits at most this long for the rate-limit store before falling back (below);
# redis-py's default is to wait as long as the operating system does (minutes).
REDIS_TIMEOUT_S = 2.0

# Inline *style attributes* carry class colours (style="--chip: #0072b2"); styles cannot run
# code, so 'unsafe-inline' is allowed for styles only. Scripts: our files and nothing else.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def login_rate_limit() -> str:
    """The app's LOGIN_RATE_LIMIT setting (read per request: one limiter serves every app)."""
    return current_app.config["LOGIN_RATE_LIMIT"] or "1000000 per second"


def login_rate_limit_off() -> bool:
    return not current_app.config["LOGIN_RATE_LIMIT"]


def _secure_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def rate_limit_storage_uri(config: Mapping[str, Any]) -> str:
    """Where login attempts are counted: the job queue's Redis if any, else process memory.

    ``QUEUE_URL`` is a redis-py URL; the limits library spells a Unix socket
    ``redis+unix://`` where redis-py has ``unix://``.
    """
    queue_url = (config.get("QUEUE_URL") or "").strip()
    if not queue_url:
        return "memory://"
    if queue_url.startswith("unix://"):
        return "redis+unix://" + queue_url.removeprefix("unix://")
    return queue_url


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class _StorageMessages(logging.Filter):
    """Flask-Limiter's own lines when its store goes away or comes back name neither the
    store nor what happens to the limit; say both, in the app's words."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not has_app_context() or not message.startswith("Rate limit storage"):
            return True
        store = _without_password(current_app.config.get("RATELIMIT_STORAGE_URI", ""))
        if "unreachable" in message:
            record.msg, record.args = (
                f"The login rate limit cannot reach Redis at {store}, so each server process "
                "counts login attempts on its own until Redis is back; check that Redis is "
                "running and LABELER_QUEUE_URL is right."), ()
        elif "recovered" in message:
            record.msg, record.args = f"The login rate limit reaches Redis at {store} again.", ()
        return True


def init_app(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", rate_limit_storage_uri(app.config))
    if not app.config["RATELIMIT_STORAGE_URI"].startswith("memory:"):
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {
            "socket_connect_timeout": REDIS_TIMEOUT_S, "socket_timeout": REDIS_TIMEOUT_S})
    # Redis down: fail open to per-process counting rather than closed (nobody could log
    # in, leads included, while the job queue is out) or fully open (no limit at all).
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter.init_app(app)
    if not any(isinstance(f, _StorageMessages) for f in limiter.logger.filters):
        limiter.logger.addFilter(_StorageMessages())
    app.after_request(_secure_headers)
