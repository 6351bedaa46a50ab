"""HTML blueprints, one per concern; registered by ``init_app``."""

from __future__ import annotations

from flask import Flask

from . import auth, errors, images, label, projects


def init_app(app: Flask) -> None:
    app.register_blueprint(auth.bp, url_prefix="/auth")
    app.register_blueprint(projects.bp, url_prefix="/")
    app.register_blueprint(images.bp, url_prefix="/images")
    app.register_blueprint(label.bp, url_prefix="/projects")
    errors.init_app(app)
