"""A project's members and their roles (the project's leads and global leads)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from ..errors import LabelerError
from ..extensions import db
from ..membership import members, remove_member, set_member, user_by_name
from ..models import User
from ..projects import project_by_id
from .access import lead_required
from .forms import MemberForm, NewMemberForm

bp = Blueprint("members", __name__)


@bp.route("/<id:project_id>/members", methods=["GET", "POST"])
@lead_required
def members_page(project_id: int):
    """List the members with a role form each; the form below adds one by user name."""
    project = project_by_id(project_id)
    form = NewMemberForm()
    if form.validate_on_submit():
        try:
            user = user_by_name(form.username.data or "")
            set_member(project, user, form.role.data or "annotator")
        except LabelerError as exc:
            db.session.rollback()
            form.username.errors = [str(exc)]
        else:
            flash(f"{user.username!r} is now {form.role.data} of {project.name!r}.", "info")
            return redirect(url_for("members.members_page", project_id=project.id))
    rows = members(project)
    forms = {m.user_id: MemberForm(obj=m, prefix=f"m{m.user_id}") for m in rows}
    return render_template("projects/members.html", project=project, members=rows,
                           form=form, forms=forms), 400 if form.errors else 200


@bp.route("/<id:project_id>/members/<id:user_id>", methods=["POST"])
@lead_required
def update_member(project_id: int, user_id: int):
    """Change a member's role, or remove them (the form's remove button)."""
    project = project_by_id(project_id)
    user = db.session.get(User, user_id) or abort(404)
    form = MemberForm(prefix=f"m{user_id}")
    if not form.validate_on_submit():
        flash("Could not save: the form was incomplete. Reload the page and try again.",
              "error")
    else:
        try:
            if form.remove.data:
                remove_member(project, user)
                flash(f"{user.username!r} is no longer a member of {project.name!r}.", "info")
            else:
                set_member(project, user, form.role.data or "annotator")
                flash(f"{user.username!r} is now {form.role.data} of {project.name!r}.", "info")
        except LabelerError as exc:
            db.session.rollback()
            flash(str(exc), "error")
    return redirect(url_for("members.members_page", project_id=project.id))
