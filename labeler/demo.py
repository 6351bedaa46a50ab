"""The demo: a project of real labelled photos and a lead account, ready to label.

The images are 3,000 Fashion-MNIST test images (10 classes, MIT licence) shipped inside
the package as one compressed array; they are written as PNG files at import, through the
same importer as any other images. Their true classes are not imported as labels: the
demo is for labelling them.
"""

from __future__ import annotations

import io
from importlib import resources

import numpy as np
from flask import current_app
from PIL import Image
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from .extensions import db
from .importer import ImportReport, import_sources
from .models import Image as ImageRow
from .models import Project, Role, User
from .projects import create_project
from .sources import Source

DEMO_DATA = "fashion_mnist_demo.npz"


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


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, "PNG")
    return buffer.getvalue()


def demo_sources(images: np.ndarray, labels: np.ndarray, names: list[str]) -> list[Source]:
    """One PNG per image, named by its true class (folder) and index."""
    sources = []
    for index, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        name = f"fashion-mnist/{names[label].replace('/', '-')}/{index:04d}.png"
        sources.append(Source(name, lambda p=pixels: _png(p), None, int(pixels.size)))
    return sources


def import_demo_images(project: Project) -> ImportReport:
    """Import the shipped Fashion-MNIST images into ``project`` (unlabelled)."""
    images, labels, names = load_demo_images()
    sources = demo_sources(images, labels, names)
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
    count = db.session.scalar(select(func.count()).select_from(ImageRow)
                              .where(ImageRow.project_id == project.id)) or 0
    if count == 0:
        report = import_demo_images(project)
        count = report.imported
    home = current_app.config["HOME"]
    return (f"Demo project {project.name!r}: {count} Fashion-MNIST images in 10 classes "
            f"(data in {home}). Embeddings are computed in the background; you can label "
            "right away.")
