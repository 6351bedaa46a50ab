"""Response headers that keep browsers safe, and rate limits on logging in.

- ``X-Content-Type-Options: nosniff`` on every response, so an uploaded file is never
  sniffed into HTML or script;
- a Content-Security-Policy on every page: scripts only from our own static files (no
  inline script can run, so injected markup stays inert), no plugins, no framing;
- ``Referrer-Policy: same-origin``;
- login attempts limited per client address (Flask-Limiter), against password guessing.
"""

from __future__ import annotations

from flask import Flask, Response, current_app

from .extensions import limiter

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


def init_app(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter.init_app(app)
    app.after_request(_secure_headers)
