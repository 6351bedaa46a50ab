"""Hostile input against multi-label projects: tag-set bodies of every wrong shape are a
400 naming the field, never a 500 and never a label; tag names with HTML are escaped on
every page and exported as safe column names. Real SQLite file."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import func, select

from labeler.extensions import db
from labeler.models import Annotation, Image
from labeler.projects import class_by_name, create_project, update_class
from labeler.users import create_api_token
from tests.builders import embedded_colour_project

SCRIPT_TAG = "<script>alert(1)</script>"


@pytest.fixture
def api(app: Flask, lead) -> Callable[..., object]:
    """Send to the API as a lead, with a Bearer token."""
    client, token = app.test_client(), create_api_token(lead)

    def send(method: str, path: str, **kwargs: object):
        return client.open(f"/api/v1{path}", method=method,
                           headers={"Authorization": f"Bearer {token}"}, **kwargs)

    return send


@pytest.fixture
def tags_project(app, tmp_path):
    return embedded_colour_project(tmp_path / "in", per_colour=1, seed_step=3,
                                   multi_label=True)


TAG_BODIES = [
    pytest.param({"image_id": 1, "labels": "red"}, "Field 'labels' should be a valid list",
                 id="labels-string"),
    pytest.param({"image_id": 1, "labels": None}, "Field 'labels' should be a valid list",
                 id="labels-null"),
    pytest.param({"image_id": 1, "labels": [1, 2]}, "Field 'labels[0]' should be a valid "
                 "string", id="labels-numbers"),
    pytest.param({"image_id": 1, "labels": [["red"]]}, "Field 'labels[0]' should be a valid "
                 "string", id="labels-nested"),
    pytest.param({"image_id": 1, "labels": {"red": True}}, "Field 'labels' should be a valid "
                 "list", id="labels-object"),
    pytest.param({"image_id": 1, "labels": ["re\x00d"]}, "no NUL", id="labels-nul"),
    pytest.param({"image_id": 1, "labels": ["a" * 201]}, "at most 200 characters",
                 id="labels-long-name"),
    pytest.param({"image_id": 1, "labels": ["red"] * 501}, "at most 500 items",
                 id="labels-too-many"),
    pytest.param({"image_id": 1, "label": "red", "labels": ["red"]}, "not both",
                 id="label-and-labels"),
    pytest.param({"image_id": 1}, "not neither", id="neither"),
]


@pytest.mark.parametrize("body, detail", TAG_BODIES)
def test_tag_sets_of_the_wrong_shape_are_400_and_record_nothing(api, tags_project, body,
                                                                  detail) -> None:
    response = api("POST", f"/projects/{tags_project.id}/annotations", data=json.dumps(body),
                   content_type="application/json")
    assert response.status_code == 400, response.text
    assert detail in response.json["detail"]
    assert db.session.scalar(select(func.count()).select_from(Annotation)) == 0


@pytest.mark.parametrize("value", ["yes", 1, None, [True]], ids=str)
def test_multi_label_must_be_a_boolean(api, value) -> None:
    response = api("POST", "/projects", json={"name": "p", "multi_label": value})
    assert response.status_code == 400, response.text
    assert "Field 'multi_label' should be a valid boolean" in response.json["detail"]


def test_unknown_and_archived_tags_are_refused_without_a_label(api, tags_project) -> None:
    image_id = db.session.scalar(select(Image.id).where(Image.project_id == tags_project.id))
    unknown = api("POST", f"/projects/{tags_project.id}/annotations",
                  json={"image_id": image_id, "labels": ["red", SCRIPT_TAG]})
    assert unknown.status_code == 404 and "has no class" in unknown.json["detail"]
    update_class(tags_project, class_by_name(tags_project, "green"), archived=True)
    refused = api("POST", f"/projects/{tags_project.id}/annotations",
                  json={"image_id": image_id, "labels": ["green"]})
    assert refused.status_code == 409 and "archived" in refused.json["detail"]
    assert db.session.scalar(select(func.count()).select_from(Annotation)) == 0


def test_html_in_tag_names_is_escaped_on_every_page_and_in_export_columns(
        api, lead_client) -> None:
    created = api("POST", "/projects", json={"name": "xss tags", "multi_label": True,
                                             "classes": [SCRIPT_TAG, "=1+1"]})
    assert created.status_code == 201, created.text
    project_id = created.json["id"]
    for page in ("", "/label", "/gallery", "/dashboard"):
        response = lead_client.get(f"/projects/{project_id}{page}")
        assert response.status_code == 200, page
        assert SCRIPT_TAG not in response.text, page
    from labeler.export import iter_csv
    from labeler.projects import get_project

    header = "".join(iter_csv(get_project("xss tags"), include_predictions=True)).splitlines()[0]
    assert header.endswith(",predicted_labels,p_script_alert_1_script,p_1_1")


def test_a_single_label_project_is_unchanged_by_a_tag_set(api, app) -> None:
    project = create_project("single", ["red"])
    db.session.add(Image(project_id=project.id, sha256="0" * 64, original_name="a.png",
                         format="PNG", width=1, height=1, size_bytes=1))
    db.session.commit()
    image_id = db.session.scalar(select(Image.id))
    response = api("POST", f"/projects/{project.id}/annotations",
                   json={"image_id": image_id, "labels": ["red"]})
    assert response.status_code == 409 and "single-label" in response.json["detail"]
    assert db.session.get(Image, image_id).tagged_at is None
