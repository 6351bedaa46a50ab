"""The JSON API for labelling: auth, CSRF, leases, labels, undo, stats, errors."""

from __future__ import annotations

import pytest

from labeler.users import create_api_token, create_user
from tests.builders import auth, colour_image


def test_requests_without_login_or_token_get_401_json(client, project):
    response = client.get(f"/api/v1/projects/{project.id}/next")
    assert response.status_code == 401 and "Bearer" in response.json["detail"]
    response = client.get("/api/v1/projects", headers=auth("lbl_wrong"))
    assert response.status_code == 401


def test_next_label_undo_cycle_with_a_token(client, project, token):
    response = client.get(f"/api/v1/projects/{project.id}/next?n=3", headers=auth(token))
    assert response.status_code == 200
    items = response.json["items"]
    assert len(items) == 3
    item = items[0]
    assert item["image_url"].endswith("/display") and "reason" in item
    assert client.get(item["image_url"], headers=auth(token)).status_code == 200

    created = client.post(f"/api/v1/projects/{project.id}/annotations", headers=auth(token),
                          json={"image_id": item["image_id"], "label": "red"})
    assert created.status_code == 201, created.json
    assert created.json["label"] == "red"
    stats = client.get(f"/api/v1/projects/{project.id}/stats", headers=auth(token)).json
    assert stats["counts"]["labelled"] == 1 and stats["counts"]["embedded"] == 24

    undone = client.delete(f"/api/v1/annotations/{created.json['annotation_id']}",
                           headers=auth(token))
    assert undone.status_code == 200 and undone.json["undone_at"]
    stats = client.get(f"/api/v1/projects/{project.id}/stats", headers=auth(token)).json
    assert stats["counts"]["labelled"] == 0


def test_leased_image_is_409_for_another_annotator(client, project, token):
    other = create_api_token(create_user("bea", "password-123"))
    item = client.get(f"/api/v1/projects/{project.id}/next", headers=auth(token)).json["items"][0]
    response = client.post(f"/api/v1/projects/{project.id}/annotations", headers=auth(other),
                           json={"image_id": item["image_id"], "label": "red"})
    assert response.status_code == 409 and "someone else" in response.json["detail"]


@pytest.mark.parametrize("body, detail", [
    ({"image_id": 1}, "Missing field 'label'"),
    ({"image_id": "1", "label": "red"}, "Field 'image_id' should be a valid integer"),
    ({"image_id": 2**31, "label": "red"}, "Field 'image_id' should be less than or equal to "
                                          "2147483647"),
    ({"image_id": 0, "label": "red"}, "Field 'image_id' should be greater than or equal to 1"),
    ({"image_id": 1, "label": "red", "note": "x"}, "The field 'note' is not one"),
    ([1, 2], "must be an object"),
])
def test_bad_bodies_are_400_with_a_reason(client, project, token, body, detail):
    response = client.post(f"/api/v1/projects/{project.id}/annotations", headers=auth(token),
                           json=body)
    assert response.status_code == 400 and detail in response.json["detail"]


def test_a_class_the_project_does_not_have_is_404(client, project, token):
    response = client.post(f"/api/v1/projects/{project.id}/annotations", headers=auth(token),
                           json={"image_id": 1, "label": "purple"})
    assert response.status_code == 404 and "has no class 'purple'" in response.json["detail"]


def test_non_json_body_is_400(client, project, token):
    response = client.post(f"/api/v1/projects/{project.id}/annotations", headers=auth(token),
                           data="not json", content_type="text/plain")
    assert response.status_code == 400 and "JSON" in response.json["detail"]


def test_reads_sent_with_the_json_content_type_and_no_body_are_served(lead_client, project):
    # What the pages' fetch helper (static/api.js) sends on every GET.
    headers = {"Content-Type": "application/json"}
    for url in (f"/api/v1/projects/{project.id}/stats", f"/api/v1/projects/{project.id}/next?n=4",
                f"/api/v1/projects/{project.id}/dashboard"):
        response = lead_client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.json)


def test_bodiless_posts_with_the_json_content_type_work_and_bodies_are_still_required(
        client, project, lead):
    from labeler.users import create_api_token

    headers = {**auth(create_api_token(lead)), "Content-Type": "application/json"}
    # The dashboard's retrain button: a POST with no body.
    assert client.post(f"/api/v1/projects/{project.id}/retrain", headers=headers).status_code in (
        202, 409)
    response = client.post(f"/api/v1/projects/{project.id}/annotations", headers=headers)
    assert response.status_code == 400 and "JSON" in response.json["detail"]


def test_unknown_ids_are_404(client, project, token):
    assert client.get("/api/v1/projects/999/next", headers=auth(token)).status_code == 404
    response = client.post(f"/api/v1/projects/{project.id}/annotations", headers=auth(token),
                           json={"image_id": 99999, "label": "red"})
    assert response.status_code == 404
    assert client.get("/api/v1/jobs/999", headers=auth(token)).status_code == 404
    assert client.get("/api/v1/nowhere", headers=auth(token)).status_code == 404


def test_session_posts_need_the_csrf_header(app, project):
    app.config["WTF_CSRF_ENABLED"] = True
    create_user("cara", "password-123")
    client = app.test_client()
    page = client.get("/auth/login").text
    csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post("/auth/login", data={"username": "cara", "password": "password-123",
                                     "csrf_token": csrf})
    item = client.get(f"/api/v1/projects/{project.id}/next").json["items"][0]
    body = {"image_id": item["image_id"], "label": "red"}
    refused = client.post(f"/api/v1/projects/{project.id}/annotations", json=body)
    assert refused.status_code == 400 and "CSRF" in refused.json["error"]
    label_page = client.get(f"/projects/{project.id}/label").text
    token = label_page.split('data-csrf="')[1].split('"')[0]
    accepted = client.post(f"/api/v1/projects/{project.id}/annotations", json=body,
                           headers={"X-CSRFToken": token})
    assert accepted.status_code == 201


def test_annotators_cannot_retrain_or_create_projects(client, project, token):
    assert client.post(f"/api/v1/projects/{project.id}/retrain",
                       headers=auth(token)).status_code == 403
    assert client.post("/api/v1/projects", headers=auth(token),
                       json={"name": "x"}).status_code == 403


def test_lead_retrain_is_a_job_and_a_second_one_conflicts(app, client, project):
    from labeler.extensions import db
    from labeler.jobs import runner

    lead_token = create_api_token(create_user("lead", "password-123", "lead"))
    started = client.post(f"/api/v1/projects/{project.id}/retrain", headers=auth(lead_token))
    assert started.status_code == 202
    again = client.post(f"/api/v1/projects/{project.id}/retrain", headers=auth(lead_token))
    assert again.status_code in (202, 409)  # 409 while the first is queued or running
    assert runner(app).wait_idle(60)
    # The test's requests share this app context's session; a real request gets a fresh one.
    db.session.expire_all()
    job = client.get(f"/api/v1/jobs/{started.json['job_id']}", headers=auth(lead_token)).json
    assert job["status"] == "succeeded" and job["progress"] == 1.0


def test_labelling_page_lists_classes_with_keys(lead_client, project):
    page = lead_client.get(f"/projects/{project.id}/label").text
    assert 'data-label="red"' in page and "<kbd>1</kbd> red" in page
    assert "label.js" in page


def test_upload_through_the_api_reports_each_file(client, project):
    import io

    lead_token = create_api_token(create_user("up", "password-123", "lead"))
    response = client.post(
        f"/api/v1/projects/{project.id}/images", headers=auth(lead_token),
        content_type="multipart/form-data",
        data={"files": [(io.BytesIO(colour_image((1, 2, 3), seed=99)), "new.png"),
                        (io.BytesIO(b"<svg><script>x</script></svg>"), "evil.png")]})
    assert response.status_code == 200, response.json
    assert response.json["imported"] == 1
    assert response.json["rejected"][0]["name"] == "evil.png"
    empty = client.post(f"/api/v1/projects/{project.id}/images", headers=auth(lead_token))
    assert empty.status_code == 400 and "files" in empty.json["detail"]
