"""Creating multi-label projects from the command line and the new-project page, and
``project show`` saying the kind. Real SQLite file."""

from __future__ import annotations

from sqlalchemy import select

from labeler.extensions import db
from labeler.models import Project


def test_cli_creates_a_multi_label_project_and_show_says_its_kind(runner):
    result = runner.invoke(args=["project", "create", "land", "--labels", "sea,sky,sunset",
                                 "--multi-label"])
    assert result.exit_code == 0, result.output
    assert "Created multi-label project 'land'" in result.output
    assert db.session.scalar(select(Project.multi_label).where(Project.name == "land")) is True
    shown = runner.invoke(args=["project", "show", "land"])
    assert shown.exit_code == 0, shown.output
    assert "kind:       multi-label" in shown.output and "tags:" in shown.output
    assert "sea: 0 tagged" in shown.output

    runner.invoke(args=["project", "create", "animals", "--labels", "cat,dog"])
    assert db.session.scalar(select(Project.multi_label)
                             .where(Project.name == "animals")) is False
    assert "kind:       single-label" in runner.invoke(args=["project", "show",
                                                             "animals"]).output


def test_the_new_project_page_accepts_the_multi_label_checkbox(lead_client):
    response = lead_client.post("/projects/new", data={"name": "land", "classes": "sea, sky",
                                                       "multi_label": "y"})
    assert response.status_code == 302, response.text
    unchecked = lead_client.post("/projects/new", data={"name": "pets", "classes": "cat"})
    assert unchecked.status_code == 302
    kinds = dict(db.session.execute(select(Project.name, Project.multi_label)).all())
    assert kinds == {"land": True, "pets": False}



def test_labels_from_folders_give_a_multi_label_image_its_folder_as_one_tag(app, tmp_path):
    from PIL import Image as PILImage

    from labeler.annotations import image_tag_ids
    from labeler.importer import import_paths
    from labeler.models import Image
    from labeler.projects import create_project, project_counts
    from tests import imagegen

    project = create_project("land", ["sea"], multi_label=True)
    for index, folder in enumerate(["sea", "sea", "mountain"]):
        (tmp_path / folder).mkdir(exist_ok=True)
        PILImage.fromarray(imagegen.gradient(seed=30 + index)).save(
            tmp_path / folder / f"{index}.png")

    report = import_paths(project, [tmp_path], labels_from_folders=True)

    assert report.imported == 3 and report.labelled == 3
    assert project_counts(project)["per_class"] == {"sea": 2, "mountain": 1}
    images = db.session.scalars(select(Image)).all()
    assert all(image.tagged_at is not None and image.label_class_id is None
               for image in images)
    assert all(len(tags) == 1 for tags in image_tag_ids([i.id for i in images]).values())
