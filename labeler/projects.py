"""Projects and their label classes: create, find, count, add classes with keys and colours.

The one place that finds a project by id (``project_by_id``: the views and the API turn
its NotFound into their 404), lists projects, counts a project's images and refuses an
archived class.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from flask import current_app
from sqlalchemy import Select, func, select

from .errors import AlreadyExists, Conflict, LabelerError, NotFound
from .extensions import db
from .membership import grant_creator
from .models import Image, ImageTag, LabelClass, Project, User

# 1-9 first, then letters. S (skip) and Z (undo) are labelling-page shortcuts, never class keys.
CLASS_KEYS = "123456789abcdefghijklmnopqrtuvwxy"
# Okabe-Ito then Tableau: distinguishable, and the first eight are colour-blind safe.
PALETTE = (
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000",
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
)
MAX_NAME_LENGTH = 200


def clean_name(name: str, what: str = "name") -> str:
    """Strip a user-supplied name and refuse empty or over-long ones."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise LabelerError(f"The {what} is empty; give it at least one visible character.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise LabelerError(f"The {what} is {len(cleaned)} characters long; "
                           f"keep it to {MAX_NAME_LENGTH}.")
    return cleaned


def parse_label_list(text: str) -> list[str]:
    """Split ``"a,b, c"`` into class names, keeping order and dropping repeats and blanks."""
    names: list[str] = []
    for part in text.split(","):
        if part.strip() and clean_name(part, "class name") not in names:
            names.append(clean_name(part, "class name"))
    return names


class ArchivedClass(Conflict):
    """Labels were asked for in a class that is archived."""


def project_by_id(project_id: int) -> Project:
    """The project with id ``project_id``; NotFound (a 404 on the web) if there is none."""
    project = db.session.get(Project, project_id)
    if project is None:
        raise NotFound(f"There is no project with id {project_id}.")
    return project


def list_projects() -> list[Project]:
    """Every project, by name."""
    return list(db.session.scalars(select(Project).order_by(Project.name)))


def get_project(name_or_id: str | int) -> Project:
    """Find a project by name (or numeric id); raise NotFound with the names that exist."""
    project = db.session.scalar(select(Project).where(Project.name == str(name_or_id)))
    if project is None and str(name_or_id).isdigit():
        project = db.session.get(Project, int(name_or_id))
    if project is None:
        names = db.session.scalars(select(Project.name).order_by(Project.name)).all()
        hint = f" Existing projects: {', '.join(names)}." if names else (
            " There are no projects yet; create one with `labeler project create NAME`.")
        raise NotFound(f"No project named {name_or_id!r}.{hint}")
    return project


def create_project(name: str, class_names: Iterable[str] = (),
                   backbone: str | None = None, creator: User | None = None, *,
                   multi_label: bool = False) -> Project:
    """Create a project with its initial classes (committed).

    Args:
        name: unique project name.
        class_names: initial classes (tags), in keyboard-key order.
        backbone: backbone that embeds its images (default: LABELER_BACKBONE).
        creator: who created it (on the web), made its lead member.
        multi_label: its classes are independent tags and each image gets a set of them;
            fixed for the project's life.
    """
    name = clean_name(name, "project name")
    if db.session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise AlreadyExists(f"A project named {name!r} already exists; pick another name.")
    project = Project(name=name, multi_label=bool(multi_label),
                      settings={"backbone": backbone or current_app.config["BACKBONE"]})
    db.session.add(project)
    for class_name in class_names:
        add_class(project, class_name)
    grant_creator(project, creator)
    db.session.commit()
    return project


def add_class(project: Project, name: str) -> LabelClass:
    """Add a class with the next free keyboard key and colour (flushed, not committed)."""
    name = clean_name(name, "class name")
    if any(c.name == name for c in project.classes):
        raise AlreadyExists(f"Project {project.name!r} already has a class named {name!r}.")
    used_keys = {c.key for c in project.classes if not c.archived}
    key = next((k for k in CLASS_KEYS if k not in used_keys), None)
    position = len(project.classes)
    label_class = LabelClass(
        name=name, key=key, colour=PALETTE[position % len(PALETTE)], position=position,
        archived=False,
    )
    project.classes.append(label_class)
    db.session.flush()
    return label_class


RESERVED_KEYS = {"s", "z"}  # skip and undo on the labelling page
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def update_class(project: Project, label_class: LabelClass, *, name: str | None = None,
                 colour: str | None = None, key: str | None = None,
                 archived: bool | None = None) -> LabelClass:
    """Rename, recolour, re-key or (un)archive a class mid-project (committed).

    Labels already given keep pointing at the class, so a rename relabels nothing and an
    archived class keeps its history; archived classes leave training and the key row.
    """
    if label_class.project_id != project.id:
        raise NotFound(f"Class {label_class.id} is not in project {project.name!r}.")
    if name is not None:
        name = clean_name(name, "class name")
        if any(c.name == name and c.id != label_class.id for c in project.classes):
            raise AlreadyExists(f"Project {project.name!r} already has a class named {name!r}.")
        label_class.name = name
    if colour is not None:
        if not _COLOUR.match(colour):
            raise LabelerError(f"Colour {colour!r} is not of the form #rrggbb.")
        label_class.colour = colour.lower()
    if key is not None:
        key = key.strip().lower()
        if key == "":
            label_class.key = None
        elif len(key) != 1 or key not in CLASS_KEYS:
            raise LabelerError(f"A class key is one of 1–9 or a letter other than S and Z, "
                               f"not {key!r}.")
        else:
            taken = next((c for c in project.classes if c.key == key and c.id != label_class.id
                          and not c.archived), None)
            if taken is not None:
                raise AlreadyExists(f"Key {key!r} is already used by class {taken.name!r}.")
            label_class.key = key
    if archived is not None:  # after the key: archiving frees the key for an active class
        label_class.archived = archived
        if archived:
            label_class.key = None
    db.session.commit()
    return label_class


def class_by_name(project: Project, name: str, *, create: bool = False) -> LabelClass:
    """Return the project's class called ``name``, creating it when ``create`` is set."""
    for label_class in project.classes:
        if label_class.name == name:
            return label_class
    if create:
        return add_class(project, name)
    known = ", ".join(c.name for c in project.active_classes()) or "none yet"
    raise NotFound(f"Project {project.name!r} has no class {name!r} (classes: {known}).")


def require_active(classes: Iterable[LabelClass], advice: str = "pick an active class") -> None:
    """Refuse labels in archived classes: ArchivedClass naming them, with ``advice``."""
    names = sorted({c.name for c in classes if c.archived})
    if len(names) == 1:
        raise ArchivedClass(f"Class {names[0]!r} is archived; {advice}.")
    if names:
        raise ArchivedClass(f"Classes {', '.join(map(repr, names))} are archived; {advice}.")


def image_count(project_id: int, *, labelled: bool | None = None) -> Select[tuple[int]]:
    """``SELECT count(*)`` of a project's images (all, labelled, or unlabelled ones).

    The one image count: callers run it, or embed it as a subquery where a hot path wants
    one statement (``labels_until_next_round``).
    """
    query = select(func.count()).select_from(Image).where(Image.project_id == project_id)
    if labelled is not None:
        query = query.where(Image.labelled if labelled else Image.unlabelled)
    return query


def count_images(project: Project, *, labelled: bool | None = None) -> int:
    """How many images the project has (all, labelled, or unlabelled ones)."""
    return db.session.scalar(image_count(project.id, labelled=labelled)) or 0


def project_counts(project: Project) -> dict[str, int | dict[str, int]]:
    """Images in the project, how many are labelled, and labelled images per class.

    In a multi-label project an image is labelled once it has a tag set (even an empty
    one), and ``per_class`` counts the images tagged with each tag.
    """
    total = count_images(project)
    if project.multi_label:
        by_id = dict(db.session.execute(
            select(ImageTag.label_class_id, func.count())
            .join(Image, Image.id == ImageTag.image_id)
            .where(Image.project_id == project.id)
            .group_by(ImageTag.label_class_id)).all())
        labelled = count_images(project, labelled=True)
    else:
        by_id = dict(db.session.execute(
            select(Image.label_class_id, func.count())
            .where(Image.project_id == project.id, Image.label_class_id.is_not(None))
            .group_by(Image.label_class_id)
        ).all())
        labelled = sum(by_id.values())
    per_class = {c.name: by_id.get(c.id, 0) for c in project.classes}
    return {"images": total, "labelled": labelled, "unlabelled": total - labelled,
            "per_class": per_class}


def selected_images(project: Project, image_ids: list[int]) -> list[Image]:
    """The images ``image_ids`` of ``project``, in that order, for a change to all of them.

    Raises:
        NotFound: some are not in the project; the sentence says which and that nothing
            was labelled (the callers change all of them or none).
    """
    images = {image.id: image for image in db.session.scalars(
        select(Image).where(Image.id.in_(image_ids), Image.project_id == project.id))}
    missing = [i for i in image_ids if i not in images]
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (" …" if len(missing) > 10 else "")
        raise NotFound(f"{len(missing)} of the images are not in project {project.name!r} "
                       f"(ids: {shown}); nothing was labelled.")
    return [images[i] for i in image_ids]
