"""Projects: list, overview, creation, classes and uploads."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from ..errors import LabelerError
from ..extensions import db
from ..gallery import newest_images
from ..jobs.pipelines import upload_then_embed
from ..models import LabelClass
from ..projects import (
    add_class,
    create_project,
    list_projects,
    parse_label_list,
    project_by_id,
    project_counts,
    update_class,
)
from .access import lead_required
from .forms import AddClassForm, ClassForm, NewProjectForm, UploadForm

bp = Blueprint("projects", __name__)

RECENT_IMAGES = 24


@bp.route("")
@login_required
def index():
    rows = [(project, project_counts(project)) for project in list_projects()]
    return render_template("projects/index.html", rows=rows)


@bp.route("projects/new", methods=["GET", "POST"])
@lead_required
def new():
    form = NewProjectForm()
    if form.validate_on_submit():
        try:
            project = create_project(form.name.data or "",
                                     parse_label_list(form.classes.data or ""))
        except LabelerError as exc:
            form.name.errors = [str(exc)]
        else:
            flash(f"Project {project.name!r} created. Upload images to start.", "info")
            return redirect(url_for("projects.show", project_id=project.id))
    return render_template("projects/new.html", form=form), 400 if form.errors else 200


@bp.route("projects/<id:project_id>")
@login_required
def show(project_id: int):
    project = project_by_id(project_id)
    recent = newest_images(project, RECENT_IMAGES)
    class_forms = {c.id: ClassForm(obj=c, prefix=f"c{c.id}") for c in project.classes}
    return render_template("projects/show.html", project=project,
                           counts=project_counts(project), recent=recent,
                           add_class_form=AddClassForm(), class_forms=class_forms,
                           upload_form=UploadForm())


@bp.route("projects/<id:project_id>/classes", methods=["POST"])
@lead_required
def add_class_view(project_id: int):
    project = project_by_id(project_id)
    form = AddClassForm()
    if form.validate_on_submit():
        try:
            label_class = add_class(project, form.name.data or "")
            db.session.commit()
            flash(f"Class {label_class.name!r} added with key {label_class.key}.", "info")
        except LabelerError as exc:
            db.session.rollback()
            flash(str(exc), "error")
    else:
        flash("Give the new class a name.", "error")
    return redirect(url_for("projects.show", project_id=project.id) + "#classes")


@bp.route("projects/<id:project_id>/classes/<id:class_id>", methods=["POST"])
@lead_required
def update_class_view(project_id: int, class_id: int):
    project = project_by_id(project_id)
    label_class = db.session.get(LabelClass, class_id)
    if label_class is None or label_class.project_id != project.id:
        abort(404)
    form = ClassForm(prefix=f"c{class_id}")
    if form.validate_on_submit():
        try:
            update_class(project, label_class, name=form.name.data, colour=form.colour.data,
                         key=form.key.data or "", archived=bool(form.archived.data))
            flash(f"Class {label_class.name!r} saved.", "info")
        except LabelerError as exc:
            db.session.rollback()
            flash(str(exc), "error")
    else:
        problems = "; ".join(f"{name}: {', '.join(errors)}" for name, errors in
                             form.errors.items())
        flash(f"Class not saved ({problems}).", "error")
    return redirect(url_for("projects.show", project_id=project.id) + "#classes")


@bp.route("projects/<id:project_id>/upload", methods=["POST"])
@lead_required
def upload(project_id: int):
    """Import uploaded images and zips (same validation as the CLI); embed in background."""
    project = project_by_id(project_id)
    form = UploadForm()
    files = [f for f in request.files.getlist(form.files.name) if f and f.filename]
    wants_json = request.accept_mimetypes.best == "application/json"
    if not form.validate_on_submit() or not files:
        message = "Choose one or more images or zip files to upload."
        if wants_json:
            return jsonify(error="Bad request", detail=message), 400
        flash(message, "error")
        return redirect(url_for("projects.show", project_id=project.id))
    report = upload_then_embed(current_app._get_current_object(), project, files,
                               labels_from_folders=bool(form.labels_from_folders.data),
                               annotator=current_user)
    if wants_json:
        return jsonify({**report.as_dict(), "summary": report.summary()})
    flash(report.summary(), "info")
    for rejected in report.rejected[:50]:
        flash(f"Rejected {rejected.name}: {rejected.reason}", "error")
    return redirect(url_for("projects.show", project_id=project.id))
