"""Who may see and run which project: members, their roles, and the request guard.

Global leads administer users, create projects and see every project. Everyone else sees
only the projects they are members of, with the role they have there:

- ``annotator``: labels the project (queue, gallery, map, its images);
- ``reviewer``: what an annotator may, and reviews others' labels;
- ``lead``: what a reviewer may, and runs the project: its members and classes, uploads,
  training rounds and settings, the dashboard and exports.

A project someone may not see does not exist for them: its URLs answer 404, never 403,
so a project's name or id cannot be probed. ``guard_request`` enforces this for every
route before its view runs, from the ids in the URL (a project's, or the id of an image,
job, annotation or class, which names the project that owns it), so no route can forget.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask_login import current_user
from sqlalchemy import Select, select

from .errors import LabelerError, NotFound
from .extensions import db
from .models import (
    Annotation,
    Image,
    Job,
    LabelClass,
    Project,
    ProjectMember,
    ProjectRole,
    User,
)

ROLES = tuple(role.value for role in ProjectRole)

#: URL arguments that name a row of a project, and the table whose ``project_id`` owns it.
OWNED_BY_PROJECT: dict[str, Any] = {"image_id": Image, "job_id": Job,
                                    "annotation_id": Annotation, "class_id": LabelClass}


def project_role(user: User, project_id: int) -> str | None:
    """``user``'s role in project ``project_id`` (global leads: ``lead``); None if none."""
    if user.is_lead:
        return ProjectRole.LEAD.value
    return db.session.scalar(select(ProjectMember.role).where(
        ProjectMember.project_id == project_id, ProjectMember.user_id == user.id))


def can_see(user: User, project_id: int) -> bool:
    """Whether ``user`` may see project ``project_id`` at all."""
    return project_role(user, project_id) is not None


def can_lead(user: User, project_id: int | None) -> bool:
    """Whether ``user`` may run project ``project_id`` (None: a global lead's action)."""
    if project_id is None:
        return bool(user.is_lead)
    return project_role(user, project_id) == ProjectRole.LEAD


def can_review(user: User, project_id: int) -> bool:
    """Whether ``user`` may review labels in project ``project_id`` (reviewers and leads)."""
    return project_role(user, project_id) in (ProjectRole.REVIEWER, ProjectRole.LEAD)


def visible_projects_query(user: User) -> Select[tuple[Project]]:
    """``SELECT`` the projects ``user`` may see, by name."""
    query = select(Project).order_by(Project.name)
    if not user.is_lead:
        query = query.where(Project.id.in_(
            select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)))
    return query


def visible_projects(user: User) -> list[Project]:
    """The projects ``user`` may see, by name."""
    return list(db.session.scalars(visible_projects_query(user)))


def check_role(role: str) -> str:
    """``role`` if it is a project role; else an error naming the ones there are."""
    if role not in ROLES:
        raise LabelerError(f"Role {role!r} is not a project role; use one of "
                           f"{', '.join(ROLES)}.")
    return role


def user_by_name(username: str) -> User:
    """The user called ``username``; NotFound saying how to create one."""
    user = db.session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise NotFound(f"There is no user named {username!r}; create one with "
                       "`labeler user create USERNAME` or on the Users page.")
    return user


def set_member(project: Project, user: User, role: str) -> ProjectMember:
    """Make ``user`` a member of ``project`` with ``role``, or change their role (committed)."""
    role = check_role(role)
    member = db.session.scalar(select(ProjectMember).where(
        ProjectMember.project_id == project.id, ProjectMember.user_id == user.id))
    if member is None:
        member = ProjectMember(project_id=project.id, user_id=user.id, role=role)
        db.session.add(member)
    else:
        member.role = role
    db.session.commit()
    return member


def remove_member(project: Project, user: User) -> None:
    """Take ``user`` out of ``project`` (committed); NotFound if they were not a member."""
    member = db.session.scalar(select(ProjectMember).where(
        ProjectMember.project_id == project.id, ProjectMember.user_id == user.id))
    if member is None:
        raise NotFound(f"{user.username!r} is not a member of project {project.name!r}.")
    db.session.delete(member)
    db.session.commit()


def members(project: Project) -> list[ProjectMember]:
    """``project``'s members, by user name."""
    return list(db.session.scalars(
        select(ProjectMember).join(User, User.id == ProjectMember.user_id)
        .where(ProjectMember.project_id == project.id).order_by(User.username)))


def owning_project(argument: str, value: int) -> int | None:
    """The project owning the row that URL argument ``argument`` names (None: no such row,
    or a row of no project, such as a job that is not a project's)."""
    if argument == "project_id":
        return value
    model = OWNED_BY_PROJECT[argument]
    return db.session.scalar(select(model.project_id).where(model.id == value))


def guard_request() -> None:
    """Before every view: a project the caller may not see answers 404, from any route.

    Anonymous callers pass through to the login page or the API's 401, which then stop
    them; rows that do not exist pass through to the view's own 404.
    """
    if not request.view_args or not current_user.is_authenticated or current_user.is_lead:
        return
    for argument, value in request.view_args.items():
        if argument != "project_id" and argument not in OWNED_BY_PROJECT:
            continue
        project_id = owning_project(argument, value)
        if project_id is not None and not can_see(current_user, project_id):
            # The same sentence a missing project gets, so membership cannot be probed.
            raise NotFound(f"There is no {argument.removesuffix('_id')} with id {value}.")


def grant_creator(project: Project, creator: User | None) -> None:
    """Make a project's creator its lead (flushed with the project, not committed)."""
    if creator is not None:
        db.session.flush()  # the project's id
        db.session.add(ProjectMember(project_id=project.id, user_id=creator.id,
                                     role=ProjectRole.LEAD.value))


def init_app(app: Flask) -> None:
    app.before_request(guard_request)
