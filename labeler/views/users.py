"""Managing users and roles (leads only)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from ..errors import LabelerError
from ..extensions import db
from ..models import User
from ..users import create_user, list_users, set_role_and_active
from .access import lead_required
from .forms import NewUserForm, UserForm

bp = Blueprint("users", __name__)


@bp.route("", methods=["GET", "POST"])
@lead_required
def index():
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            user = create_user(form.username.data or "", form.password.data or "",
                               form.role.data or "annotator")
            flash(f"Created {user.role} {user.username!r}. Tell them their password.", "info")
            return redirect(url_for("users.index"))
        except LabelerError as exc:
            form.username.errors = [str(exc)]
    users = list_users()
    forms = {u.id: UserForm(obj=u, prefix=f"u{u.id}") for u in users}
    return render_template("users/index.html", users=users, form=form, forms=forms), (
        400 if form.errors else 200)


@bp.route("/<id:user_id>", methods=["POST"])
@lead_required
def update(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    form = UserForm(prefix=f"u{user_id}")
    if form.validate_on_submit():
        try:
            set_role_and_active(user, current_user, role=form.role.data,
                                active=bool(form.active.data))
            flash(f"Saved {user.username!r}: {user.role}, "
                  f"{'active' if user.active else 'deactivated'}.", "info")
        except LabelerError as exc:
            flash(str(exc), "error")
    else:
        flash("Could not save: the form was incomplete.", "error")
    return redirect(url_for("users.index"))
