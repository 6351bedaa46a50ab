"""HTML blueprints, one per concern; registered by ``init_app``."""

from __future__ import annotations

from flask import Flask

from . import (
    api_docs,
    auth,
    dashboard,
    embedding_map,
    errors,
    exports,
    favicon,
    gallery,
    images,
    label,
    projects,
    users,
)


def init_app(app: Flask) -> None:
    app.register_blueprint(auth.bp, url_prefix="/auth")
    app.register_blueprint(favicon.bp)
    app.register_blueprint(api_docs.bp)
    app.register_blueprint(projects.bp, url_prefix="/")
    app.register_blueprint(images.bp, url_prefix="/images")
    app.register_blueprint(users.bp, url_prefix="/users")
    app.register_blueprint(label.bp, url_prefix="/projects")
    app.register_blueprint(dashboard.bp, url_prefix="/projects")
    app.register_blueprint(gallery.bp, url_prefix="/projects")
    app.register_blueprint(embedding_map.bp, url_prefix="/projects")
    app.register_blueprint(exports.bp, url_prefix="/projects")
    errors.init_app(app)
