"""Every route: anonymous users are sent to log in (pages) or get 401 (API); annotators get
403 on every lead page and action. Walks the app's URL map, so a new route is covered."""

from __future__ import annotations

import pytest

from tests.builders import embedded_colour_project, everyone_joins
from tests.conftest import login

# The favicon is asked for by browsers on every site, before anyone logs in; the API
# reference renders the OpenAPI document, which is public too.
PUBLIC = {"auth.login", "static", "api.openapi", "api_docs.reference", "favicon.favicon"}
LEAD_ONLY = {
    "projects.new", "projects.add_class_view", "projects.update_class_view", "projects.upload",
    "users.index", "users.update", "dashboard.dashboard",
    "api.new_project", "api.retrain", "api.upload_images", "api.dashboard",
    "api.training_settings", "api.export_project",
    "exports.export_page", "exports.download", "exports.start_model_export", "exports.model_file",
}


def concrete_urls(app, project_id: int):
    from labeler.extensions import db
    from labeler.models import Image

    image_id = db.session.query(Image.id).first()[0]
    values = {"project_id": project_id, "image_id": image_id, "class_id": 1, "user_id": 1,
              "job_id": 1, "annotation_id": 1, "filename": "app.css", "export_format": "csv"}
    with app.test_request_context():
        urls = [(rule, app.url_for(rule.endpoint, **{n: values[n] for n in rule.arguments}))
                for rule in app.url_map.iter_rules()]
    for rule, url in urls:
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, url


@pytest.fixture(params=["single-label", "multi-label"])
def project(request, app, tmp_path):
    """Both kinds of project: the rules are the same for a tagging project."""
    made = embedded_colour_project(tmp_path / "in", per_colour=2, seed_step=3,
                                   multi_label=request.param == "multi-label")
    everyone_joins()  # the annotator fixture's user is a member, as at upgrade
    return made


def test_anonymous_requests_go_to_login_or_get_401(app, client, project):
    checked = 0
    for endpoint, method, url in concrete_urls(app, project.id):
        if endpoint in PUBLIC or endpoint == "auth.logout":
            continue
        response = client.open(url, method=method)
        if url.startswith("/api/"):
            assert response.status_code == 401, (endpoint, method, response.status_code)
        else:
            assert response.status_code == 302, (endpoint, method, response.status_code)
            assert "/auth/login" in response.headers["Location"], endpoint
        checked += 1
    assert checked > 30


def test_annotators_get_403_on_every_lead_route(app, client, annotator, project):
    from labeler.users import create_api_token

    login(client, annotator.username)  # pages: the session; API: a bearer token
    bearer = {"Authorization": f"Bearer {create_api_token(annotator)}"}
    seen = set()
    for endpoint, method, url in concrete_urls(app, project.id):
        if endpoint not in LEAD_ONLY:
            continue
        if method == "GET" and endpoint in {"projects.add_class_view",
                                            "projects.update_class_view"}:
            continue
        api = url.startswith("/api/")
        response = client.open(url, method=method, json={} if api else None,
                               headers=bearer if api else None)
        assert response.status_code == 403, (endpoint, method, response.status_code)
        seen.add(endpoint)
    missing = LEAD_ONLY - seen
    assert not missing, f"lead-only endpoints not found in the URL map: {missing}"


#: Global-lead actions: a project's lead member is still refused them.
GLOBAL_LEAD_ONLY = {"projects.new", "users.index", "users.update", "api.new_project"}
#: URL arguments naming a row of a project (labeler.membership.guard_request checks each).
PROJECT_ARGUMENTS = {"project_id", "image_id", "job_id", "annotation_id", "class_id"}


def rows_of(project, annotator):
    """Ids of real rows of ``project`` for every URL argument: a class, image, annotation and
    job of that project, so each route reaches the row it names."""
    from labeler.extensions import db
    from labeler.models import Job
    from tests.builders import images, label

    image = images(project)[0]
    if project.multi_label:
        from labeler.queue import submit_tags

        annotation = submit_tags(project, image.id, project.classes[:1], annotator)
    else:
        annotation = label(project, image, annotator)
    job = Job(kind="embed", project_id=project.id, status="succeeded")
    db.session.add(job)
    db.session.commit()
    return {"project_id": project.id, "image_id": image.id, "class_id": project.classes[0].id,
            "user_id": annotator.id, "job_id": job.id, "annotation_id": annotation.id,
            "filename": "app.css", "export_format": "csv"}


def project_routes(app, values):
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.arguments & PROJECT_ARGUMENTS:
                url = app.url_for(rule.endpoint, **{n: values[n] for n in rule.arguments})
                for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                    yield rule.endpoint, method, url


def test_a_non_member_gets_404_on_every_project_route_and_sees_no_project(app, client,
                                                                          project, lead):
    from labeler.users import create_api_token, create_user

    values = rows_of(project, lead)
    outsider = create_user("otto", "password-otto", "annotator")  # a member of nothing
    login(client, "otto", "password-otto")
    bearer = {"Authorization": f"Bearer {create_api_token(outsider)}"}
    checked = set()
    for endpoint, method, url in project_routes(app, values):
        api = url.startswith("/api/")
        response = client.open(url, method=method, json={} if api else None,
                               headers=bearer if api else None)
        assert response.status_code == 404, (endpoint, method, response.status_code)
        assert project.name not in response.text, endpoint  # the name does not leak
        checked.add(endpoint)
    assert {"api.job_status", "api.delete_annotation", "images.thumbnail", "label.label_page",
            "projects.update_class_view", "members.members_page", "api.list_members",
            "api.project_stats"} <= checked
    assert len(checked) > 30
    assert client.get("/api/v1/projects", headers=bearer).get_json() == {"projects": []}
    index = client.get("/")
    assert index.status_code == 200 and project.name not in index.text
    # A member of the project sees it, and the lead (global) sees it without membership.
    assert client.get(f"/api/v1/projects/{project.id}/stats", headers=bearer).status_code == 404
    from labeler.membership import set_member

    set_member(project, outsider, "annotator")
    assert client.get(f"/api/v1/projects/{project.id}/stats", headers=bearer).status_code == 200
    assert [p["name"] for p in client.get("/api/v1/projects", headers=bearer).get_json()[
        "projects"]] == [project.name]


def test_a_project_lead_runs_their_project_but_not_the_installation(app, client, project,
                                                                    lead):
    """A global annotator who is a project's lead member: members, classes, uploads,
    rounds, settings, dashboard and exports of that project; not users or new projects."""
    from labeler.membership import set_member
    from labeler.users import create_api_token, create_user

    values = rows_of(project, lead)
    boss = create_user("petra", "password-petra", "annotator")
    set_member(project, boss, "lead")
    login(client, "petra", "password-petra")
    bearer = {"Authorization": f"Bearer {create_api_token(boss)}"}
    project_lead_routes = (LEAD_ONLY - GLOBAL_LEAD_ONLY) | {
        "members.members_page", "members.update_member", "api.list_members",
        "api.put_member", "api.delete_member", "api.finetune"}
    seen = set()
    for endpoint, method, url in project_routes(app, values):
        if endpoint not in project_lead_routes or (method, endpoint) in {
                ("POST", "members.update_member"), ("DELETE", "api.delete_member")}:
            continue  # removing oneself is tried last, below
        api = url.startswith("/api/")
        response = client.open(url, method=method, json={} if api else None,
                               headers=bearer if api else None)
        assert response.status_code not in (403, 500), (endpoint, method,
                                                          response.status_code)
        # The one 404 is the model file, which no export has built yet.
        assert response.status_code != 404 or endpoint == "exports.model_file", endpoint
        seen.add(endpoint)
    assert project_lead_routes - {"members.update_member", "api.delete_member"} <= seen
    with app.test_request_context():
        for endpoint in GLOBAL_LEAD_ONLY:
            rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
            url = app.url_for(endpoint, **{n: values[n] for n in rule.arguments})
            method = "POST" if "POST" in rule.methods else "GET"
            api = url.startswith("/api/")
            response = client.open(url, method=method, json={} if api else None,
                                   headers=bearer if api else None)
            assert response.status_code == 403, (endpoint, response.status_code)
    added = client.put(f"/api/v1/projects/{project.id}/members", headers=bearer,
                       json={"username": "lena", "role": "reviewer"})
    assert added.status_code == 200 and added.get_json()["role"] == "reviewer"
    gone = client.delete(f"/api/v1/projects/{project.id}/members/{boss.id}", headers=bearer)
    assert gone.status_code == 200
    assert client.get(f"/projects/{project.id}/dashboard").status_code == 404  # not any more


def test_a_lead_reads_every_page_and_api_route_of_a_project_without_a_server_error(
        app, client, lead, project):
    from labeler.users import create_api_token

    login(client, lead.username)
    bearer = {"Authorization": f"Bearer {create_api_token(lead)}"}
    checked = 0
    for endpoint, method, url in concrete_urls(app, project.id):
        if method != "GET" or endpoint == "auth.logout":
            continue
        response = client.get(url, headers=bearer if url.startswith("/api/") else None)
        assert response.status_code < 500, (endpoint, url, response.status_code)
        checked += 1
    assert checked > 15
