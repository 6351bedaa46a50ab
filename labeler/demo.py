"""The demo: a ready project and a lead account, so a new user can look around at once."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from .extensions import db
from .models import Project, Role, User
from .projects import create_project


def ensure_demo_lead(username: str, password: str) -> User:
    """Create the demo lead, or reset its password so the one just printed works."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username, role=Role.LEAD.value, active=True, password_hash="")
        db.session.add(user)
    user.password_hash = generate_password_hash(password)
    user.role, user.active = Role.LEAD.value, True
    db.session.commit()
    return user


def prepare_demo(project_name: str, username: str, password: str) -> str:
    """Create (once) the demo project and (re)set the demo lead; return a summary line."""
    home = current_app.config["HOME"]
    ensure_demo_lead(username, password)
    project = db.session.scalar(select(Project).where(Project.name == project_name))
    if project is None:
        project = create_project(project_name)
    return (f"Demo project {project.name!r} is ready. It has no images yet: import some with "
            f"`LABELER_HOME={home} labeler import {project.name} PATH`.")
