"""Users, roles, passwords and API tokens.

Passwords are stored as salted scrypt hashes (werkzeug); API tokens are random 256-bit
strings shown once and stored as their SHA-256 (a fast hash is right for high-entropy
secrets: there is nothing to brute-force).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import Flask, Request, g
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from .errors import AlreadyExists, LabelerError, NotFound
from .extensions import db, login_manager
from .models import ApiToken, Role, User, utcnow

MIN_PASSWORD_LENGTH = 8
TOKEN_PREFIX = "lbl_"


def list_users() -> list[User]:
    """Every user, by username."""
    return list(db.session.scalars(select(User).order_by(User.username)))


def create_user(username: str, password: str, role: str = Role.ANNOTATOR.value) -> User:
    """Create an active user (committed)."""
    username = username.strip()
    if not username or len(username) > 80 or any(ch.isspace() for ch in username):
        raise LabelerError("A username is 1–80 characters with no spaces.")
    if role not in {r.value for r in Role}:
        raise LabelerError(f"Role must be 'lead' or 'annotator', not {role!r}.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise LabelerError(f"The password is too short; use at least {MIN_PASSWORD_LENGTH} "
                           "characters.")
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AlreadyExists(f"User {username!r} already exists.")
    user = User(username=username, password_hash=generate_password_hash(password), role=role,
                active=True)
    db.session.add(user)
    db.session.commit()
    return user


def set_role_and_active(user: User, acting: User, *, role: str | None = None,
                        active: bool | None = None) -> User:
    """Change a user's role or deactivate them (committed); a lead cannot demote or lock
    out themselves, so a project never loses its last way in by accident."""
    if user.id == acting.id and (role == Role.ANNOTATOR or active is False):
        raise LabelerError("You cannot demote or deactivate yourself; ask another lead.")
    if role is not None:
        if role not in {r.value for r in Role}:
            raise LabelerError(f"Role must be 'lead' or 'annotator', not {role!r}.")
        user.role = role
    if active is not None:
        user.active = active
    db.session.commit()
    return user


def get_user(username: str) -> User:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"No user named {username!r}; create one with `labeler user create`.")
    return user


def authenticate(username: str, password: str) -> User | None:
    """The active user with these credentials, or None."""
    user = db.session.scalar(select(User).where(User.username == username))
    # Hash even for unknown users, so response time does not reveal which names exist.
    stored = user.password_hash if user else generate_password_hash("not-a-real-password")
    if check_password_hash(stored, password) and user is not None and user.active:
        return user
    return None


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(user: User, name: str = "") -> str:
    """Create a token for ``user`` and return it; only its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=_token_digest(token), name=name))
    db.session.commit()
    return token


TOKEN_LAST_USED_PRECISION = timedelta(minutes=1)


def user_for_token(token: str) -> User | None:
    """The active user owning ``token``, recording its last use; None if unknown."""
    # One query for token and owner: this runs on every API request.
    api_token = db.session.scalar(
        select(ApiToken).options(joinedload(ApiToken.user))
        .where(ApiToken.token_hash == _token_digest(token))
    )
    if api_token is None or not api_token.user.active:
        return None
    now = utcnow()
    last = api_token.last_used_at
    if last is not None and last.tzinfo is None:  # SQLite returns naive datetimes (UTC)
        last = last.replace(tzinfo=now.tzinfo)
    # "Last used" is for spotting dead tokens, not an audit log: writing it on every request
    # would make every API read a database write, serialised with every annotator's labels.
    if last is None or now - last > TOKEN_LAST_USED_PRECISION:
        api_token.last_used_at = now
        db.session.commit()
    return api_token.user


def has_users() -> bool:
    return db.session.scalar(select(User.id).limit(1)) is not None


def _load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id)) if user_id.isdigit() else None


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _load_user_from_request(request: Request) -> User | None:
    token = _bearer_token(request)
    if token is None:
        return None
    user = user_for_token(token)
    g.authenticated_by_token = user is not None
    return user


def carries_valid_token(request: Request) -> bool:
    """Whether ``request`` proves a valid Bearer token, which no cross-site page can forge.

    Only such requests may skip the API's CSRF check: a session cookie sent with a made-up
    ``Authorization: Bearer`` header is still a session request. (With both a session and a
    token, Flask-Login loads the session user, so the token is checked here.)
    """
    if g.get("authenticated_by_token", False):
        return True
    token = _bearer_token(request)
    return token is not None and user_for_token(token) is not None


def init_app(app: Flask) -> None:
    """Wire Flask-Login: session users, and Bearer tokens for the API."""
    login_manager.user_loader(_load_user)
    login_manager.request_loader(_load_user_from_request)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Log in to continue."

    @app.teardown_request
    def forget_request_user(_exc: BaseException | None) -> None:
        # Flask-Login caches the user in g, which lives as long as the app context; when a
        # caller keeps one app context across requests (tests, embedded use), the next
        # request must authenticate afresh rather than inherit this one's user.
        g.pop("_login_user", None)
        g.pop("authenticated_by_token", None)
