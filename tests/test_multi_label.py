"""Multi-label projects in the services: tag sets recorded, relabelled, undone, counted,
and the queue serving only images without a current tag set. Real SQLite file."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from labeler.annotations import annotation_tag_ids, image_tag_ids
from labeler.errors import LabelerError
from labeler.extensions import db
from labeler.models import Annotation, Image, Project
from labeler.projects import ArchivedClass, class_by_name, create_project, project_counts
from labeler.queue import (
    LeaseConflict,
    WrongProjectKind,
    lease_next,
    skip,
    submit_label,
    submit_tags,
    undo,
)
from labeler.users import create_user
from tests.builders import PASSWORD

TAGS = ["sea", "sky", "sunset"]


def _add_images(project: Project, count: int) -> list[Image]:
    images = [Image(project_id=project.id, sha256=f"{project.id}-{i:062x}",
                    original_name=f"{i}.png", format="PNG", width=8, height=8,
                    size_bytes=100, queue_rank=i) for i in range(count)]
    db.session.add_all(images)
    db.session.commit()
    return images


@pytest.fixture
def tagging(app):
    project = create_project("landscapes", TAGS, multi_label=True)
    return project, _add_images(project, 4), create_user("ann", PASSWORD, "annotator")


def _tags(project: Project, *names: str):
    return [class_by_name(project, name) for name in names]


def _names(project: Project, class_ids: list[int]) -> list[str]:
    by_id = {c.id: c.name for c in project.classes}
    return sorted(by_id[i] for i in class_ids)


def test_a_tag_set_is_recorded_mirrored_and_counted(tagging):
    project, images, user = tagging
    assert project.multi_label is True
    first = lease_next(project, user, n=1)[0]
    annotation = submit_tags(project, first.id, _tags(project, "sea", "sky"), user)

    assert annotation.label_class_id is None
    assert _names(project, annotation_tag_ids([annotation.id])[annotation.id]) == ["sea", "sky"]
    db.session.expire_all()
    image = db.session.get(Image, first.id)
    assert image.tagged_at is not None and image.label_class_id is None
    assert image.leased_to_id is None
    assert _names(project, image_tag_ids([image.id])[image.id]) == ["sea", "sky"]
    counts = project_counts(project)
    assert counts["labelled"] == 1 and counts["unlabelled"] == 3
    assert counts["per_class"] == {"sea": 1, "sky": 1, "sunset": 0}
    # A labelled image is never served again.
    assert first.id not in {i.id for i in lease_next(project, user, n=10)}


def test_the_empty_set_is_a_label(tagging):
    project, images, user = tagging
    annotation = submit_tags(project, images[0].id, [], user)
    assert annotation_tag_ids([annotation.id]) == {annotation.id: []}
    db.session.expire_all()
    assert db.session.get(Image, images[0].id).tagged_at is not None
    assert image_tag_ids([images[0].id]) == {}
    assert project_counts(project)["labelled"] == 1
    assert images[0].id not in {i.id for i in lease_next(project, user, n=10)}


def test_relabel_keeps_history_and_undo_restores_the_previous_set(tagging):
    project, images, user = tagging
    target = images[1].id
    first = submit_tags(project, target, _tags(project, "sea"), user)
    second = submit_tags(project, target, _tags(project, "sky", "sunset"), user)
    assert _names(project, image_tag_ids([target])[target]) == ["sky", "sunset"]
    history = db.session.scalars(select(Annotation).where(Annotation.image_id == target)
                                 .order_by(Annotation.id)).all()
    assert [a.id for a in history] == [first.id, second.id]

    undo(second.id, user)
    db.session.expire_all()
    assert _names(project, image_tag_ids([target])[target]) == ["sea"]
    image = db.session.get(Image, target)
    assert image.tagged_at is not None
    assert project_counts(project)["per_class"] == {"sea": 1, "sky": 0, "sunset": 0}

    undo(first.id, user)
    db.session.expire_all()
    image = db.session.get(Image, target)
    assert image.tagged_at is None and image_tag_ids([target]) == {}
    assert project_counts(project)["labelled"] == 0
    # Back in the queue, reserved for whoever undid it.
    assert image.leased_to_id == user.id
    assert target in {i.id for i in lease_next(project, user, n=10)}


def test_the_wrong_kind_of_label_is_refused_with_what_to_send(tagging):
    project, images, user = tagging
    with pytest.raises(WrongProjectKind, match='multi-label.*"labels"'):
        submit_label(project, images[0].id, class_by_name(project, "sea"), user)
    single = create_project("animals", ["cat", "dog"])
    (image,) = _add_images(single, 1)
    with pytest.raises(WrongProjectKind, match='single-label.*"label"'):
        submit_tags(single, image.id, [class_by_name(single, "cat")], user)
    assert db.session.scalar(select(Annotation.id)) is None


def test_archived_tags_and_tags_of_another_project_are_refused(tagging):
    project, images, user = tagging
    sunset = class_by_name(project, "sunset")
    sunset.archived = True
    db.session.commit()
    with pytest.raises(ArchivedClass, match="'sunset' is archived"):
        submit_tags(project, images[0].id, [sunset], user)
    other = create_project("other", ["sea"], multi_label=True)
    with pytest.raises(LabelerError, match="belongs to another project"):
        submit_tags(project, images[0].id, [class_by_name(other, "sea")], user)
    assert db.session.scalar(select(Annotation.id)) is None


def test_leases_and_skips_work_for_tag_sets(tagging):
    project, images, user = tagging
    other = create_user("bob", PASSWORD, "annotator")
    held = lease_next(project, user, n=1)[0]
    with pytest.raises(LeaseConflict):
        submit_tags(project, held.id, _tags(project, "sea"), other)
    skip(project, held.id, user)
    served = [i.id for i in lease_next(project, other, n=4)]
    assert served[-1] == held.id  # skipped: served last
