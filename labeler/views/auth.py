"""Log in and log out."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ..extensions import limiter
from ..security import login_rate_limit, login_rate_limit_off
from ..users import authenticate, has_users

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Keep me logged in")


def _safe_next(target: str | None) -> str:
    # Only same-site relative paths: an open redirect would let a link phish for logins.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("projects.index")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_rate_limit, methods=["POST"], exempt_when=login_rate_limit_off,
               error_message="Too many login attempts from your address; wait a minute and "
                             "try again.")
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.username.data or "", form.password.data or "")
        if user is not None:
            login_user(user, remember=bool(form.remember.data))
            return redirect(_safe_next(request.args.get("next")))
        flash("Wrong username or password.", "error")
    status = 200 if request.method == "GET" or form.errors == {} else 400
    return render_template("auth/login.html", form=form, has_users=has_users()), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
