"""The JSON API for multi-label projects: creating one, tag sets in and out, the wrong
field for a project's kind, and the image fields (labels, predicted tags, probabilities).
Real SQLite file, images imported and embedded with the fake backbone."""

from __future__ import annotations

import pytest

from labeler.extensions import db
from labeler.models import ImageTagScore, JobStatus, ModelRound
from labeler.projects import class_by_name
from labeler.users import create_api_token
from tests.builders import auth, embedded_colour_project


@pytest.fixture
def tags_project(app, tmp_path):
    """Project "colour tags": 4 images of each colour, tags red, green, blue."""
    return embedded_colour_project(tmp_path / "in", per_colour=4, seed_step=3,
                                   multi_label=True)


def _annotate(client, project, token, body):
    return client.post(f"/api/v1/projects/{project.id}/annotations", headers=auth(token),
                       json=body)


def test_a_lead_creates_a_multi_label_project(client, lead):
    headers = auth(create_api_token(lead))
    response = client.post("/api/v1/projects", headers=headers, json={
        "name": "landscapes", "classes": ["sea", "sky"], "multi_label": True})
    assert response.status_code == 201, response.json
    assert response.json["multi_label"] is True
    listed = client.get("/api/v1/projects", headers=headers).json["projects"]
    assert [p["multi_label"] for p in listed] == [True]
    plain = client.post("/api/v1/projects", headers=headers,
                        json={"name": "animals", "classes": ["cat"]})
    assert plain.json["multi_label"] is False


def test_tag_sets_go_in_and_come_back_with_history_and_undo(client, tags_project, token):
    item = client.get(f"/api/v1/projects/{tags_project.id}/next?n=2",
                      headers=auth(token)).json["items"][0]
    assert item["labels"] is None and item["predicted_labels"] == []
    assert item["tag_probabilities"] == {}

    first = _annotate(client, tags_project, token,
                      {"image_id": item["image_id"], "labels": ["blue", "red", "red"]})
    assert first.status_code == 201, first.json
    assert first.json["label"] is None and first.json["labels"] == ["red", "blue"]
    relabel = _annotate(client, tags_project, token, {"image_id": item["image_id"],
                                                      "labels": []})
    assert relabel.status_code == 201 and relabel.json["labels"] == []
    stats = client.get(f"/api/v1/projects/{tags_project.id}/stats", headers=auth(token)).json
    assert stats["counts"]["labelled"] == 1
    assert stats["counts"]["per_class"] == {"red": 0, "green": 0, "blue": 0}

    undone = client.delete(f"/api/v1/annotations/{relabel.json['annotation_id']}",
                           headers=auth(token))
    assert undone.status_code == 200 and undone.json["labels"] == []
    page = client.get(f"/api/v1/projects/{tags_project.id}/images?label=labelled",
                      headers=auth(token)).json
    assert [(i["image_id"], i["labels"]) for i in page["items"]] == [
        (item["image_id"], ["red", "blue"])]


def test_the_wrong_field_for_the_project_kind_is_a_409_naming_the_right_one(
        client, tags_project, project, token):
    image_id = client.get(f"/api/v1/projects/{tags_project.id}/next",
                          headers=auth(token)).json["items"][0]["image_id"]
    # 409, not 400: the body fits the document (schemathesis checks that such bodies are
    # never refused as malformed); it conflicts with the project's kind.
    response = _annotate(client, tags_project, token, {"image_id": image_id, "label": "red"})
    assert response.status_code == 409
    assert "multi-label" in response.json["detail"] and '"labels"' in response.json["detail"]

    response = _annotate(client, project, token, {"image_id": 1, "labels": ["red"]})
    assert response.status_code == 409
    assert "single-label" in response.json["detail"] and '"label"' in response.json["detail"]

    both = _annotate(client, tags_project, token,
                     {"image_id": image_id, "label": "red", "labels": ["red"]})
    assert both.status_code == 400 and "not both" in both.json["detail"]
    unknown = _annotate(client, tags_project, token, {"image_id": image_id,
                                                      "labels": ["red", "purple"]})
    assert unknown.status_code == 404 and "no class 'purple'" in unknown.json["detail"]


def test_single_label_images_and_annotations_carry_no_tag_fields(client, project, token):
    item = client.get(f"/api/v1/projects/{project.id}/next", headers=auth(token)).json["items"][0]
    assert not {"labels", "predicted_labels", "tag_probabilities"} & set(item)
    created = _annotate(client, project, token, {"image_id": item["image_id"], "label": "red"})
    assert created.json["label"] == "red" and "labels" not in created.json
    page = client.get(f"/api/v1/projects/{project.id}/images", headers=auth(token)).json
    assert "labels" not in page["items"][0]


def test_images_show_each_tags_probability_and_the_tags_over_threshold(
        client, tags_project, token):
    # What a round of a multi-label project writes: per-tag scores and thresholds.
    image_id = client.get(f"/api/v1/projects/{tags_project.id}/next",
                          headers=auth(token)).json["items"][0]["image_id"]
    probabilities = {"red": 0.9, "green": 0.35, "blue": 0.2}
    db.session.add_all(ImageTagScore(image_id=image_id, probability=p,
                                     label_class_id=class_by_name(tags_project, name).id)
                       for name, p in probabilities.items())
    db.session.add(ModelRound(project_id=tags_project.id, number=1, n_labels=0,
                              status=JobStatus.SUCCEEDED,
                              metrics={"thresholds": {"red": 0.5, "green": 0.3, "blue": 0.5}}))
    db.session.commit()
    item = next(i for i in client.get(f"/api/v1/projects/{tags_project.id}/next?n=5",
                                      headers=auth(token)).json["items"]
                if i["image_id"] == image_id)
    assert item["tag_probabilities"] == probabilities
    assert item["predicted_labels"] == ["red", "green"]
    page = client.get(f"/api/v1/projects/{tags_project.id}/images", headers=auth(token)).json
    tile = next(i for i in page["items"] if i["image_id"] == image_id)
    assert tile["labels"] is None and tile["predicted_labels"] == ["red", "green"]


def test_the_gallery_filters_labelled_unlabelled_and_by_tag(client, tags_project, token):
    ids = [i["image_id"] for i in client.get(f"/api/v1/projects/{tags_project.id}/next?n=2",
                                             headers=auth(token)).json["items"]]
    _annotate(client, tags_project, token, {"image_id": ids[0], "labels": ["green"]})
    _annotate(client, tags_project, token, {"image_id": ids[1], "labels": []})

    def listed(query):
        page = client.get(f"/api/v1/projects/{tags_project.id}/images?{query}",
                          headers=auth(token)).json
        return [i["image_id"] for i in page["items"]]

    assert listed("label=labelled") == ids
    assert not set(ids) & set(listed("label=unlabelled"))
    assert len(listed("label=unlabelled")) == 10
    assert listed("label=green") == [ids[0]]
