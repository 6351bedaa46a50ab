"""Backups of multi-label projects keep the kind, tag sets (history, current, the empty
set) and per-tag scores through a restore. Real SQLite file, real images imported and
embedded with the fake backbone."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from labeler.annotations import annotation_tag_ids, image_tag_ids
from labeler.backup import backup_project
from labeler.extensions import db
from labeler.models import Annotation, Image, ImageTagScore
from labeler.projects import class_by_name, get_project
from labeler.queue import submit_tags, undo
from labeler.restore import restore_project
from labeler.users import create_user
from tests.builders import PASSWORD, embedded_colour_project, images


@pytest.fixture
def tags_project(app, tmp_path):
    return embedded_colour_project(tmp_path / "in", per_colour=2, seed_step=3,
                                   multi_label=True)


def describe(name: str) -> dict:
    """A project's tag data by image name and tag name (ids differ after a restore)."""
    project = get_project(name)
    names = {c.id: c.name for c in project.classes}
    shown = {"multi_label": project.multi_label, "images": {}}
    for image in images(project):
        history = db.session.scalars(select(Annotation).where(Annotation.image_id == image.id)
                                     .order_by(Annotation.id)).all()
        tags = annotation_tag_ids([a.id for a in history])
        scores = db.session.execute(select(ImageTagScore.label_class_id,
                                           ImageTagScore.probability)
                                    .where(ImageTagScore.image_id == image.id)).all()
        shown["images"][image.original_name] = {
            "current": sorted(names[t] for t in image_tag_ids([image.id]).get(image.id, [])),
            "tagged": image.tagged_at is not None,
            "history": [(sorted(names[t] for t in tags[a.id]), a.undone_at is not None)
                        for a in history],
            "scores": sorted((names[t], p) for t, p in scores)}
    return shown


def test_a_multi_label_project_round_trips_through_backup_and_restore(tags_project, tmp_path):
    user = create_user("ann", PASSWORD, "annotator")
    first, second, third = images(tags_project)[:3]
    red, blue = class_by_name(tags_project, "red"), class_by_name(tags_project, "blue")
    submit_tags(tags_project, first.id, [red, blue], user)
    submit_tags(tags_project, second.id, [], user)
    wrong = submit_tags(tags_project, third.id, [blue], user)
    undo(wrong.id, user)
    db.session.add(ImageTagScore(image_id=first.id, label_class_id=red.id, probability=0.75))
    db.session.commit()
    before = describe("colour tags")
    assert before["images"][second.original_name] == {
        "current": [], "tagged": True, "history": [([], False)], "scores": []}

    archive = tmp_path / "tags.zip"
    report = backup_project("colour tags", archive)
    assert report.counts["annotation_tag"] == 3 and report.counts["image_tag"] == 2
    assert report.counts["image_tag_score"] == 1

    restored = restore_project(archive, "copy")
    assert restored.counts["annotation_tag"] == 3
    db.session.expire_all()
    assert describe("copy") == before
    copy = get_project("copy")
    assert copy.multi_label is True
    copied_ids = set(db.session.scalars(select(Image.id).where(Image.project_id == copy.id)))
    assert copied_ids.isdisjoint({first.id, second.id, third.id})
