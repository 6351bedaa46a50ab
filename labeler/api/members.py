"""A project's members and their roles (the project's leads and global leads only)."""

from __future__ import annotations

from ..extensions import db
from ..membership import members, remove_member, set_member, user_by_name
from ..models import ProjectMember, User
from ..projects import project_by_id
from . import ApiError, bp, team_schemas
from .inputs import NewMember
from .spec import declare


def _member(member: ProjectMember) -> dict[str, object]:
    return {"user_id": member.user_id, "username": member.user.username, "role": member.role}


@bp.get("/projects/<id:project_id>/members")
@declare("listMembers", (200, team_schemas.MemberList), 404, lead=True)
def list_members(project_id: int):
    """The project's members with their roles (leads only)."""
    return {"members": [_member(m) for m in members(project_by_id(project_id))]}


@bp.put("/projects/<id:project_id>/members")
@declare("setMember", (200, team_schemas.Member), 404, json=NewMember, lead=True)
def put_member(project_id: int, json: NewMember):
    """Add a user to the project with a role, or change their role (leads only)."""
    project = project_by_id(project_id)
    return _member(set_member(project, user_by_name(json.username), json.role))


@bp.delete("/projects/<id:project_id>/members/<id:user_id>")
@declare("removeMember", (200, team_schemas.MemberList), 404, lead=True)
def delete_member(project_id: int, user_id: int):
    """Take a user out of the project (leads only); answers the members left."""
    project = project_by_id(project_id)
    user = db.session.get(User, user_id)
    if user is None:
        raise ApiError(404, "Not found", f"There is no user with id {user_id}.")
    remove_member(project, user)
    return {"members": [_member(m) for m in members(project)]}
