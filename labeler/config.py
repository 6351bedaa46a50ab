"""Every setting, declared once: name, default, help text.

Settings are read from the environment (``LABELER_*``); ``create_app(config=...)`` may
override any of them by its Flask key. The README's settings table is checked against
this list by a test, so a setting cannot go undocumented.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The package's version (also ``labeler.__version__``), recorded in backups.
VERSION = "0.1.0"


@dataclass(frozen=True)
class Setting:
    """One configuration setting.

    Attributes:
        key: the Flask config key, e.g. ``HOME``; the environment variable is ``LABELER_`` + key.
        default: the value used when neither the environment nor the caller sets one
            (``None`` means "derived at start-up", see ``help``).
        help: one sentence for the README and ``labeler --help``.
        parse: turns the environment string into the typed value.
    """

    key: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str

    @property
    def env_var(self) -> str:
        return f"LABELER_{self.key}"


def is_truthy(text: str | None) -> bool:
    """Whether a setting or query-string value means yes: 1, true, yes or on (any case)."""
    return (text or "").strip().lower() in {"1", "true", "yes", "on"}


SETTINGS: tuple[Setting, ...] = (
    Setting("HOME", "./labeler-data", "Data directory: database, stored images, thumbnails, "
            "embeddings, cached weights and the secret key."),
    Setting("DATABASE_URL", None, "SQLAlchemy database URL; default: an SQLite file "
            "`labeler.sqlite3` in the data directory."),
    Setting("QUEUE_URL", "", "Job queue: empty runs import, embed and retrain jobs on "
            "threads of the server; a `redis://host:port/db` URL sends them to RQ on Redis, "
            "run by `labeler worker` processes on any number of machines."),
    Setting("SECRET_KEY", None, "Key that signs session cookies; default: generated on first "
            "run and kept in `secret_key` in the data directory."),
    Setting("MAX_UPLOAD_MB", 512, "Largest request body the server accepts, and largest "
            "single file an import takes, in MiB (larger uploads get HTTP 413).", int),
    Setting("THUMBNAIL_SIZE", 256, "Longest side of stored thumbnails, in pixels.", int),
    Setting("ZIP_MAX_RATIO", 100, "Largest compression ratio accepted for a zip entry; "
            "higher ratios are refused as zip bombs.", int),
    Setting("ZIP_MAX_TOTAL_MB", 20_000, "Largest total uncompressed size of one zip, in MiB.",
            int),
    Setting("IMPORT_WORKERS", 2, "Threads that decode and thumbnail images during an import.",
            int),
    Setting("BACKBONE", "efficientnet-lite0", "Backbone that turns images into embeddings "
            "for new projects (`labeler backbones` lists them)."),
    Setting("LOGIN_RATE_LIMIT", "10 per minute; 50 per hour", "Login attempts allowed per "
            "client address (Flask-Limiter syntax); empty turns the limit off. Counted per "
            "server process, or in the Redis of `LABELER_QUEUE_URL` when set, so that every "
            "worker and host shares one count."),
    Setting("SESSION_COOKIE_SECURE", False, "Send the session cookie over HTTPS only; turn "
            "on behind TLS.", is_truthy),
    Setting("LOG_LEVEL", "INFO", "Logging level of the server and CLI."),
    Setting("ACCESS_LOG", True, "Print one line per HTTP request on the server's terminal "
            "(address, request, status, size, milliseconds); `0` turns it off.", is_truthy),
)


def settings_by_key() -> dict[str, Setting]:
    """Return the settings keyed by their Flask config key."""
    return {setting.key: setting for setting in SETTINGS}


def load_config(overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config: defaults, then the environment, then ``overrides``.

    Derived values (database URL, secret key) are filled in last, from the data directory.
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    config: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.key in overrides:
            value = overrides.pop(setting.key)
        elif setting.env_var in environ:
            raw = environ[setting.env_var]
            try:
                value = setting.parse(raw)
            except ValueError as exc:
                raise ValueError(f"{setting.env_var}={raw!r} is not valid: {exc}") from exc
        else:
            value = setting.default
        config[setting.key] = value
    config.update(overrides)  # other Flask keys (TESTING, WTF_CSRF_ENABLED, ...)

    home = Path(config["HOME"]).expanduser().resolve()
    config["HOME"] = home
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = f"sqlite:///{home / 'labeler.sqlite3'}"
    config["SQLALCHEMY_DATABASE_URI"] = config["DATABASE_URL"]
    config["MAX_CONTENT_LENGTH"] = config["MAX_UPLOAD_MB"] * 1024 * 1024
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config["REMEMBER_COOKIE_HTTPONLY"] = True
    return config


def ensure_secret_key(home: Path) -> str:
    """Return the secret key kept in the data directory, creating it on first run.

    The key never lives in the repository; the file is readable by its owner only.
    """
    path = home / "secret_key"
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # O_EXCL: two processes starting at once must agree on one key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
