"""The demo: a project of real labelled photos and a lead account, ready to label.

The images are 3,000 Fashion-MNIST test images (10 classes, MIT licence) shipped inside
the package as one compressed array; they are written as PNG files at import, through the
same importer as any other images. Their true classes are not imported as labels: the
demo is for labelling them. Nor do they show in any name: an image is called by its
position in the array (``fashion-mnist/02825.png``), since its name is the labelling
page's ``alt`` text and the exports' ``file_name``, where a class folder would give the
answer away. The truth stays in the package (``demo_truth``) to check labels against.
"""

from __future__ import annotations

import io
import re
from importlib import resources

import numpy as np
from flask import current_app
from PIL import Image
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from .extensions import db
from .importer import ImportReport, import_sources
from .models import Image as ImageRow
from .models import Project, Role, User
from .projects import count_images, create_project
from .sources import Source

DEMO_DATA = "fashion_mnist_demo.npz"
# How versions before neutral names called a demo image: by its true class's folder.
_CLASS_FOLDER_NAME = re.compile(r"^fashion-mnist/[^/]+/(\d+)\.png$")


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


def load_demo_images() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images uint8 N×28×28, labels, class names) of the shipped demo data."""
    with resources.files("labeler.demo_data").joinpath(DEMO_DATA).open("rb") as handle:
        data = np.load(handle)
        return data["images"], data["labels"], [str(n) for n in data["class_names"]]


def png_bytes(pixels: np.ndarray) -> bytes:
    """A greyscale image (uint8 H×W) as PNG file bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, "PNG")
    return buffer.getvalue()


def demo_file_name(index: int) -> str:
    """The name of demo image ``index``: its position in the shipped array, never its class."""
    return f"fashion-mnist/{index:05d}.png"


def demo_sources(images: np.ndarray) -> list[Source]:
    """One PNG per image, named neutrally by its index."""
    return [Source(demo_file_name(index), lambda p=pixels: png_bytes(p), None, int(pixels.size))
            for index, pixels in enumerate(images)]


def demo_truth() -> dict[str, str]:
    """The true class of each demo image, by its file name (the images' ``original_name``)."""
    _, labels, names = load_demo_images()
    return {demo_file_name(index): names[label] for index, label in enumerate(labels)}


def rename_class_folder_images(project: Project) -> int:
    """Give demo images imported under their class's folder name their neutral name.

    Demo projects prepared by earlier versions were named ``fashion-mnist/Trouser/2825.png``;
    renaming keeps their labels and history (names are display text, not identity).

    Returns:
        How many images were renamed.
    """
    renamed = 0
    for image in db.session.scalars(select(ImageRow).where(
            ImageRow.project_id == project.id,
            ImageRow.original_name.like("fashion-mnist/%/%"))):
        match = _CLASS_FOLDER_NAME.match(image.original_name)
        if match:
            image.original_name = demo_file_name(int(match[1]))
            renamed += 1
    db.session.commit()
    return renamed


def import_demo_images(project: Project) -> ImportReport:
    """Import the shipped Fashion-MNIST images into ``project`` (unlabelled)."""
    images, _, _ = load_demo_images()
    sources = demo_sources(images)
    return import_sources(project, sources, total=len(sources))


def prepare_demo(project_name: str, username: str, password: str) -> str:
    """Create (once) the demo project with its images and (re)set the demo lead.

    Returns:
        A summary line for the terminal.
    """
    ensure_demo_lead(username, password)
    project = db.session.scalar(select(Project).where(Project.name == project_name))
    if project is None:
        _, _, names = load_demo_images()
        project = create_project(project_name, names)
    count = count_images(project)
    renamed = 0
    if count == 0:
        report = import_demo_images(project)
        count = report.imported
    else:
        renamed = rename_class_folder_images(project)
    home = current_app.config["HOME"]
    note = (f" Renamed {renamed} images that were named after their class, which gave the "
            "answer away." if renamed else "")
    return (f"Demo project {project.name!r}: {count} Fashion-MNIST images in 10 classes "
            f"(data in {home}). Embeddings are computed in the background; you can label "
            f"right away.{note}")
