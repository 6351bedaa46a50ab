"""Every route: anonymous users are sent to log in (pages) or get 401 (API); annotators get
403 on every lead page and action. Walks the app's URL map, so a new route is covered."""

from __future__ import annotations

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
