"""labeler: active-learning image labelling."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from .config import VERSION as __version__  # noqa: F401 - re-exported


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app: settings, extensions, blueprints, CLI commands.

    Args:
        config: overrides by Flask config key (e.g. ``{"HOME": tmp_path, "TESTING": True}``);
            everything else comes from ``LABELER_*`` environment variables or defaults.
    """
    from . import api, cache, cli, jobs, security, users, views
    from .config import ensure_secret_key, load_config
    from .database import engine_options
    from .extensions import csrf, db, login_manager, migrate
    from .resources import resource_dir
    from .routing import IdConverter

    settings = load_config(config)
    app = Flask(__name__, template_folder=str(resource_dir("templates")),
                static_folder=str(resource_dir("static")))
    app.config.update(settings)
    app.config["HOME"].mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = ensure_secret_key(app.config["HOME"])
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS",
                          engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))
    logging.basicConfig(level=app.config["LOG_LEVEL"])
    # Alembic's per-start "Context impl SQLiteImpl" chatter is noise for users.
    logging.getLogger("alembic").setLevel(logging.WARNING)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(resource_dir("migrations")),
                     render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    cache.init_app(app)
    security.init_app(app)
    users.init_app(app)
    jobs.init_app(app)
    # <id:...> in the pages' and the API's routes: a database id, else no route (404).
    app.url_map.converters["id"] = IdConverter
    views.init_app(app)
    api.init_app(app)
    cli.init_app(app)
    return app
