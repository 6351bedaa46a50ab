"""Extension objects, created unbound; ``create_app`` binds them with ``init_app``."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Deterministic constraint names, so Alembic migrations can name what they alter (SQLite
# batch mode needs names to drop or change constraints).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
# Only routes that opt in are limited (login); storage defaults to this process's memory.
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def commit_keep_loaded() -> None:
    """Commit without expiring the session's objects, for requests that go on reading them.

    A plain commit expires every loaded object, so the next attribute read reloads it: on
    the labelling hot path that is three or four extra queries per request for rows this
    same request has just written. Only use it where nothing read afterwards can have been
    changed by someone else in between in a way that matters to the response.
    """
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True
