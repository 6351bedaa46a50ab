"""Flask-WTF forms of the lead's pages (CSRF-protected)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp

try:  # wtforms >= 3.3 deprecates (value, label) tuples
    from wtforms.fields import SelectChoice

    ROLES: list = [SelectChoice("annotator", "Annotator"), SelectChoice("lead", "Project lead")]
    PROJECT_ROLES: list = [SelectChoice("annotator", "Annotator"),
                           SelectChoice("reviewer", "Reviewer"), SelectChoice("lead", "Lead")]
except ImportError:  # pragma: no cover - older wtforms
    ROLES = [("annotator", "Annotator"), ("lead", "Project lead")]
    PROJECT_ROLES = [("annotator", "Annotator"), ("reviewer", "Reviewer"), ("lead", "Lead")]


class NewProjectForm(FlaskForm):
    name = StringField("Project name", validators=[DataRequired(), Length(max=200)])
    classes = StringField("Classes (comma-separated, in key order)",
                          validators=[Optional(), Length(max=5000)])
    multi_label = BooleanField("Multi-label (tags)")


class AddClassForm(FlaskForm):
    name = StringField("New class", validators=[DataRequired(), Length(max=200)])


class ClassForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    colour = StringField("Colour", validators=[DataRequired(),
                                               Regexp(r"^#[0-9a-fA-F]{6}$", message="#rrggbb")])
    key = StringField("Key", validators=[Optional(), Length(max=1)])
    archived = BooleanField("Archived")


class UploadForm(FlaskForm):
    files = MultipleFileField("Images or zip files")
    labels_from_folders = BooleanField("Label images in a zip by their folder name")


class NewUserForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, max=200)])
    role = SelectField("Role", choices=ROLES)


class UserForm(FlaskForm):
    role = SelectField("Role", choices=ROLES)
    active = BooleanField("Active")


class NewMemberForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=80)])
    role = SelectField("Role in this project", choices=PROJECT_ROLES)


class MemberForm(FlaskForm):
    """Changes a member's role, or (the remove button) takes them out of the project."""

    role = SelectField("Role", choices=PROJECT_ROLES)
    remove = BooleanField("Remove")


class ExportModelForm(FlaskForm):
    """Starts a model export job: no fields, only the CSRF token."""
