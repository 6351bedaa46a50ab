"""The gallery of a multi-label project: tag filters and changing tags in bulk (API)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from labeler.annotations import image_tag_ids, record_tags
from labeler.extensions import db
from labeler.importer import import_paths
from labeler.models import Annotation, Image, ImageTagScore, JobStatus, ModelRound
from labeler.projects import create_project
from tests import imagegen
from tests.builders import COLOURS, colour_image, everyone_joins
from tests.conftest import login

TAGS = ["red", "green", "blue"]
THRESHOLDS = {"red": 0.5, "green": 0.3, "blue": 0.7}


@pytest.fixture
def tagged(app, tmp_path, lead):
    """Project "tags" (multi-label): 9 images; image i has probability 0.1 * (i + 1) for
    every tag; images 0 and 1 are labelled {red} and {} (none of these)."""
    project = create_project("tags", TAGS, multi_label=True)
    files = {f"{name}_{i}.png": colour_image(rgb, seed=i * 7 + k)
             for k, (name, rgb) in enumerate(COLOURS.items()) for i in range(3)}
    imagegen.write_files(tmp_path / "in", files)
    import_paths(project, [tmp_path / "in"])
    images = all_images(project)
    for i, image in enumerate(images):
        for c in project.classes:
            db.session.add(ImageTagScore(image_id=image.id, label_class_id=c.id,
                                         probability=round(0.1 * (i + 1), 2)))
    db.session.add(ModelRound(project_id=project.id, number=1, status=JobStatus.SUCCEEDED,
                              metrics={"kind": "multi_label", "thresholds": THRESHOLDS}))
    record_tags(images[0], [project.classes[0]], lead)
    record_tags(images[1], [], lead)
    db.session.commit()
    everyone_joins()  # the annotators of these tests label this project too
    return project


def all_images(project):
    return db.session.scalars(select(Image).where(Image.project_id == project.id)
                              .order_by(Image.id)).all()


def ids(client, project, **args) -> list[int]:
    response = client.get(f"/api/v1/projects/{project.id}/images", query_string=args)
    assert response.status_code == 200, response.json
    return [item["image_id"] for item in response.json["items"]]


def test_filters_by_tag_state_probability_and_labelled(lead_client, tagged):
    images = [im.id for im in all_images(tagged)]
    # probabilities 0.1 .. 0.9; green's threshold 0.3, blue's 0.7
    assert ids(lead_client, tagged, tag="green", tag_state="predicted") == images[2:]
    assert ids(lead_client, tagged, tag="green", tag_state="not_predicted") == images[:2]
    assert ids(lead_client, tagged, tag="blue", tag_state="predicted") == images[6:]
    assert ids(lead_client, tagged, tag="red", tag_state="has") == images[:1]
    assert ids(lead_client, tagged, tag="red", tag_state="not_has") == images[1:2]
    assert ids(lead_client, tagged, tag="green", tag_state="not_has") == images[:2]
    assert ids(lead_client, tagged, tag="blue", min_probability="0.35",
               max_probability="0.6") == images[3:6]
    assert ids(lead_client, tagged, label="labelled") == images[:2]
    assert ids(lead_client, tagged, label="red") == images[:1]
    assert ids(lead_client, tagged, label="unlabelled") == images[2:]


@pytest.mark.parametrize(("args", "status", "words"), [
    # Well-formed by the query's schema, but not for this project: conflicts (409).
    ({"tag_state": "has"}, 409, "Choose a tag"),
    ({"min_probability": "0.2"}, 409, "Choose a tag"),
    ({"tag": "purple"}, 404, "no tag 'purple'"),
    ({"predicted": "red"}, 409, "tag_state=predicted"),
    ({"label": "purple"}, 404, "no tag 'purple'"),
    ({"tag": "red", "tag_state": "maybe"}, 400, "tag_state"),
])
def test_bad_tag_filters_say_what_to_send(lead_client, tagged, args, status, words):
    response = lead_client.get(f"/api/v1/projects/{tagged.id}/images", query_string=args)
    assert response.status_code == status, response.json
    assert words in response.json["detail"]


def test_tag_filters_in_a_single_label_project_are_refused(lead_client, project):
    response = lead_client.get(f"/api/v1/projects/{project.id}/images",
                               query_string={"tag": "red"})
    assert response.status_code == 409
    assert "multi-label" in response.json["detail"]


def post_tags(client, project, body):
    """POST to bulk-tags as the page does: with the session's CSRF token from the page."""
    html = client.get(f"/projects/{project.id}/gallery").text
    token = html.split('data-csrf="')[1].split('"')[0]
    return client.post(f"/api/v1/projects/{project.id}/bulk-tags", json=body,
                       headers={"X-CSRFToken": token})


def tag_names(project, image_ids):
    names = {c.id: c.name for c in project.classes}
    db.session.expire_all()
    found = image_tag_ids(image_ids)
    return [[names[t] for t in found.get(i, [])] for i in image_ids]


def test_add_and_remove_start_from_the_tags_shown(client, annotator, tagged):
    login(client, annotator.username)
    images = [im.id for im in all_images(tagged)]
    # image 0: labelled {red}; image 1: labelled {}; image 4 (p 0.5): predicted red, green.
    chosen = [images[0], images[1], images[4]]
    response = post_tags(client, tagged, {"image_ids": chosen, "add": ["blue"]})
    assert response.status_code == 200, response.json
    assert response.json["updated"] == 3
    assert [item["labels"] for item in response.json["items"]] == [
        ["red", "blue"], ["blue"], ["red", "green", "blue"]]
    assert tag_names(tagged, chosen) == [["red", "blue"], ["blue"], ["red", "green", "blue"]]
    response = post_tags(client, tagged, {"image_ids": chosen, "remove": ["red", "blue"]})
    assert response.status_code == 200, response.json
    assert tag_names(tagged, chosen) == [[], [], ["green"]]
    db.session.expire_all()
    assert all(db.session.get(Image, i).tagged_at is not None for i in chosen)
    sources = db.session.scalars(select(Annotation.source).where(
        Annotation.image_id == images[4])).all()
    assert sources == ["gallery", "gallery"]


def test_confirm_gives_each_image_its_predicted_tags(lead_client, tagged):
    images = [im.id for im in all_images(tagged)]
    response = post_tags(lead_client, tagged, {"image_ids": images[2:4] + images[7:8],
                                               "confirm_predictions": True})
    assert response.status_code == 200, response.json
    # p 0.3: green only (threshold 0.3); p 0.4: green; p 0.8: all three
    assert tag_names(tagged, images[2:4] + images[7:8]) == [
        ["green"], ["green"], ["red", "green", "blue"]]


def test_confirm_without_predictions_labels_nothing(lead_client, tagged):
    images = all_images(tagged)
    db.session.execute(ImageTagScore.__table__.delete().where(
        ImageTagScore.image_id == images[5].id))
    db.session.commit()
    before = db.session.scalar(select(func.count()).select_from(Annotation))
    response = post_tags(lead_client, tagged, {"image_ids": [images[4].id, images[5].id],
                                               "confirm_predictions": True})
    assert response.status_code == 409
    assert "1 of the selected images have no predicted tags" in response.json["detail"]
    assert db.session.scalar(select(func.count()).select_from(Annotation)) == before


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"add": ["purple"]}, 404, "no tag 'purple'"),
    ({"add": ["red"], "confirm_predictions": True}, 400, "not both"),
    ({}, 400, "not both and not neither"),
    ({"add": []}, 400, "add"),
])
def test_bad_bulk_tag_requests_say_what_to_send(lead_client, tagged, body, status, words):
    image = all_images(tagged)[3]
    before = db.session.scalar(select(func.count()).select_from(Annotation))
    response = post_tags(lead_client, tagged, {"image_ids": [image.id], **body})
    assert response.status_code == status, response.json
    assert words in response.json["detail"]
    assert db.session.scalar(select(func.count()).select_from(Annotation)) == before


def test_bulk_tags_in_a_single_label_project_points_to_bulk_label(lead_client, project):
    image = all_images(project)[0]
    response = post_tags(lead_client, project, {"image_ids": [image.id], "add": ["red"]})
    assert response.status_code == 409
    assert "bulk-label" in response.json["detail"]


def test_gallery_page_of_a_tag_project_has_tag_filters(lead_client, tagged):
    html = lead_client.get(f"/projects/{tagged.id}/gallery?tag=green&tag_state=predicted").text
    assert 'name="tag_state"' in html and 'id="g-add-tag"' in html
    assert 'data-multi-label="true"' in html and "kind-tags" in html
    assert 'value="predicted" selected' in html
    bad = lead_client.get(f"/projects/{tagged.id}/gallery?tag_state=has").text
    assert "Choose a tag" in bad


def test_image_page_shows_the_tags_their_probabilities_and_each_answer(lead_client, tagged):
    images = all_images(tagged)
    page = lead_client.get(f"/projects/{tagged.id}/images/{images[0].id}").text
    assert ">Tags</h2>" in page and ">red</span>" in page
    # p 0.1 for every tag: listed with its probability, none predicted
    assert page.count("10.0 %") == 3 and "· predicted" not in page
    empty = lead_client.get(f"/projects/{tagged.id}/images/{images[1].id}").text
    assert empty.count("none of these") == 2  # the current tags, and the history's answer
    late = lead_client.get(f"/projects/{tagged.id}/images/{images[8].id}").text
    assert ">unlabelled</span>" in late and late.count("· predicted") == 3
