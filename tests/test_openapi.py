"""The OpenAPI document at /api/v1/openapi.json is valid, complete, and true.

It is generated from the pydantic declarations on the views (``labeler.api.spec``); these
tests check it from outside, as a client would read it.

"True" is checked against real responses: a project is driven through the API (list and
create projects, next, annotate, undo, skip, stats, retrain and its job, upload, gallery
page, bulk label, map, dashboard, settings) and through its error paths, and every
response is validated against the schema the document gives for its path, method and
status. Validation is strict: a field the document marks required must be present, and a
field the document does not mention fails too, so the document cannot silently fall
behind the code in either direction.
"""

from __future__ import annotations

import copy
import io
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError
from openapi_spec_validator import validate as validate_openapi

from labeler.users import create_api_token, create_user
from tests.builders import auth, colour_image, label_from_queue

API = "/api/v1"
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _strict(node: Any) -> Any:
    """``node`` with ``additionalProperties: false`` on every object listing its properties.

    The published document leaves objects open (clients should tolerate new fields); the
    test closes them so that a field added to a response without documenting it fails.
    """
    if isinstance(node, dict):
        node = {key: _strict(value) for key, value in node.items()}
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_strict(value) for value in node]
    return node


class Contract:
    """Validates real responses against the document, and records what was checked."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.components = _strict(document["components"])
        self.checked: set[tuple[str, str, int]] = set()

    def response_schema(self, path: str, method: str, status: int) -> dict[str, Any]:
        """The JSON schema of a documented response; fails if the status is undocumented."""
        operation = self.document["paths"][path][method.lower()]
        responses = operation["responses"]
        assert str(status) in responses, (
            f"{method} {path} answered {status}, which the document does not list "
            f"(it lists {sorted(responses)})")
        response = responses[str(status)]
        if "$ref" in response:
            response = self.document["components"]["responses"][response["$ref"].split("/")[-1]]
        return response["content"]["application/json"]["schema"]

    def validate(self, path: str, method: str, status: int, body: Any) -> None:
        """Raise ``ValidationError`` unless ``body`` fits the documented response schema."""
        schema = {"components": self.components,
                  "allOf": [_strict(self.response_schema(path, method, status))]}
        # Formats are checked too: a timestamp must be RFC 3339, with its offset.
        Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER
                             ).validate(body)

    def check(self, response, path: str, method: str, status: int | None = None) -> Any:
        """Assert ``response`` has ``status`` (if given) and fits the document; its JSON."""
        if status is not None:
            assert response.status_code == status, (response.status_code, response.text)
        assert response.mimetype == "application/json", response.mimetype
        self.validate(path, method, response.status_code, response.json)
        self.checked.add((path, method.lower(), response.status_code))
        return response.json


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item}


def routed_operations(app) -> set[tuple[str, str]]:
    """(OpenAPI path, method) of every route of the API blueprint."""
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        assert path.startswith(API + "/"), path
        for method in rule.methods - IGNORED_METHODS:
            found.add((path[len(API):], method.lower()))
    return found


@pytest.fixture
def document(client, token):
    response = client.get(f"{API}/openapi.json", headers=auth(token))
    assert response.status_code == 200
    return response.json


@pytest.fixture
def contract(document):
    return Contract(document)


@pytest.fixture
def lead_token(app):
    return create_api_token(create_user("leia", "password-123", "lead"))


def test_document_is_served_without_authentication(client):
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200, response.text
    assert response.json["openapi"].startswith("3.1")
    assert response.json["servers"] == [{"url": "/api/v1"}]


def test_document_is_valid_openapi(document):
    validate_openapi(document)  # raises OpenAPIValidationError when it is not


def test_every_route_is_documented_and_every_documented_operation_exists(app, document):
    routed, documented = routed_operations(app), documented_operations(document)
    assert routed - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routed == set(), "documented operations the app does not have"


def test_every_operation_documents_its_errors_with_the_error_schema(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            public = operation.get("security") == []
            assert public or "401" in codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            for code in codes - {"200", "201", "202"}:
                response = operation["responses"][code]
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"}, (method, path, code)


def test_strict_validation_catches_a_missing_required_field_and_an_undocumented_one(
        client, contract, project, token):
    """The checks below are only worth something if they can fail: make them fail."""
    body = client.get(f"{API}/projects/{project.id}/next?n=2", headers=auth(token)).json
    contract.validate("/projects/{project_id}/next", "get", 200, body)
    for field in ("image_id", "image_url", "thumbnail_url", "prediction", "reason"):
        broken = copy.deepcopy(body)
        del broken["items"][0][field]
        with pytest.raises(ValidationError, match=field):
            contract.validate("/projects/{project_id}/next", "get", 200, broken)
    broken = copy.deepcopy(body)
    del broken["items"][1]["reason"]["note"]
    with pytest.raises(ValidationError, match="note"):
        contract.validate("/projects/{project_id}/next", "get", 200, broken)
    broken = copy.deepcopy(body)
    broken["items"][0]["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        contract.validate("/projects/{project_id}/next", "get", 200, broken)
    with pytest.raises(ValidationError):
        contract.validate("/projects/{project_id}/next", "get", 404, {"error": "Not found"})


def test_a_whole_project_through_the_api_matches_the_document(
        app, client, contract, project, token, lead_token, alice):
    from labeler.jobs import runner

    c, annotator, lead = contract, auth(token), auth(lead_token)
    pid = project.id

    projects = c.check(client.get(f"{API}/projects", headers=annotator),
                       "/projects", "get", 200)
    assert [p["name"] for p in projects["projects"]] == ["colours"]
    fresh = c.check(client.post(f"{API}/projects", headers=lead,
                                json={"name": "fresh", "classes": ["a", "b"]}),
                    "/projects", "post", 201)
    me = c.check(client.get(f"{API}/me", headers=lead), "/me", "get", 200)
    assert me["role"] == "lead"

    # Before any round: no predictions, so "prediction" is null.
    items = c.check(client.get(f"{API}/projects/{pid}/next?n=3", headers=annotator),
                    "/projects/{project_id}/next", "get", 200)["items"]
    assert items and all(item["prediction"] is None for item in items)
    created = c.check(client.post(f"{API}/projects/{pid}/annotations", headers=annotator,
                                  json={"image_id": items[0]["image_id"], "label": "red"}),
                      "/projects/{project_id}/annotations", "post", 201)
    undone = c.check(client.delete(f"{API}/annotations/{created['annotation_id']}",
                                   headers=annotator),
                     "/annotations/{annotation_id}", "delete", 200)
    assert undone["undone_at"]
    c.check(client.post(f"{API}/projects/{pid}/skip", headers=annotator,
                        json={"image_id": items[1]["image_id"]}),
            "/projects/{project_id}/skip", "post", 200)

    upload = c.check(client.post(
        f"{API}/projects/{pid}/images", headers=lead, content_type="multipart/form-data",
        data={"files": [(io.BytesIO(colour_image((200, 30, 30), seed=99)),
                         "red_new.png"),
                        (io.BytesIO(b"not an image"), "notes.txt")]}),
        "/projects/{project_id}/images", "post", 200)
    assert upload["imported"] == 1 and upload["rejected"]
    assert runner(app).wait_idle(60)

    # Labels through the queue, then a retrain through the API: predictions exist after it.
    label_from_queue(project, alice, 12)
    job = c.check(client.post(f"{API}/projects/{pid}/retrain", headers=lead),
                  "/projects/{project_id}/retrain", "post", 202)
    assert runner(app).wait_idle(60)
    status = c.check(client.get(f"{API}/jobs/{job['job_id']}", headers=annotator),
                     "/jobs/{job_id}", "get", 200)
    assert status["status"] == "succeeded"
    items = c.check(client.get(f"{API}/projects/{pid}/next?n=2", headers=annotator),
                    "/projects/{project_id}/next", "get", 200)["items"]
    assert items[0]["prediction"] is not None and items[0]["reason"]["probabilities"]

    stats = c.check(client.get(f"{API}/projects/{pid}/stats", headers=annotator),
                    "/projects/{project_id}/stats", "get", 200)
    assert stats["active_round"] is not None and stats["rounds"]
    page = c.check(client.get(f"{API}/projects/{pid}/images?limit=5&sort=confidence",
                              headers=annotator),
                   "/projects/{project_id}/images", "get", 200)
    assert len(page["items"]) == 5 and page["next_cursor"]
    unlabelled = c.check(client.get(f"{API}/projects/{pid}/images?label=unlabelled",
                                    headers=annotator),
                         "/projects/{project_id}/images", "get", 200)["items"]
    ids = [item["image_id"] for item in unlabelled if item["predicted"]][:3]
    assert ids
    c.check(client.post(f"{API}/projects/{pid}/bulk-label", headers=annotator,
                        json={"image_ids": ids, "confirm_predictions": True}),
            "/projects/{project_id}/bulk-label", "post", 200)
    c.check(client.post(f"{API}/projects/{pid}/bulk-label", headers=annotator,
                        json={"image_ids": ids[:1], "label": "blue"}),
            "/projects/{project_id}/bulk-label", "post", 200)
    mapped = c.check(client.get(f"{API}/projects/{pid}/map", headers=annotator),
                     "/projects/{project_id}/map", "get", 200)
    assert not mapped["empty"] and mapped["points"]["image_id"]
    empty = c.check(client.get(f"{API}/projects/{fresh['id']}/map", headers=lead),
                    "/projects/{project_id}/map", "get", 200)
    assert empty["empty"] and empty["message"]
    board = c.check(client.get(f"{API}/projects/{pid}/dashboard", headers=lead),
                    "/projects/{project_id}/dashboard", "get", 200)
    assert board["curve"] and board["annotators"] and board["jobs"]
    c.check(client.post(f"{API}/projects/{pid}/settings", headers=lead,
                        json={"strategy": "margin", "retrain_every": 50}),
            "/projects/{project_id}/settings", "post", 200)
    tuning = c.check(client.post(f"{API}/projects/{pid}/finetune", headers=lead),
                     "/projects/{project_id}/finetune", "post", 202)
    assert runner(app).wait_idle(60)
    tuned = client.get(f"{API}/jobs/{tuning['job_id']}", headers=lead).json
    assert tuned["status"] == "failed" and "Label more first" in tuned["message"]

    exercised = {(path, method) for path, method, status in c.checked if status < 300}
    not_exercised = documented_operations(contract.document) - exercised
    # The export is a file download (checked in its own test); the document is checked above.
    assert not_exercised == {("/projects/{project_id}/export", "get"),
                             ("/openapi.json", "get")}


def test_error_responses_match_the_document(app, client, contract, project, token,
                                            lead_token):
    c, annotator, lead = contract, auth(token), auth(lead_token)
    pid = project.id

    c.check(client.get(f"{API}/projects"), "/projects", "get", 401)
    c.check(client.get(f"{API}/projects", headers=auth("lbl_wrong")), "/projects", "get", 401)
    c.check(client.post(f"{API}/projects", headers=annotator, json={"name": "x"}),
            "/projects", "post", 403)
    c.check(client.get(f"{API}/projects/{pid}/dashboard", headers=annotator),
            "/projects/{project_id}/dashboard", "get", 403)
    c.check(client.post(f"{API}/projects/{pid}/retrain", headers=annotator),
            "/projects/{project_id}/retrain", "post", 403)
    c.check(client.post(f"{API}/projects/{pid}/finetune", headers=annotator),
            "/projects/{project_id}/finetune", "post", 403)
    c.check(client.post(f"{API}/projects", headers=lead, json={"name": "colours"}),
            "/projects", "post", 409)

    c.check(client.get(f"{API}/projects/999/next", headers=annotator),
            "/projects/{project_id}/next", "get", 404)
    c.check(client.get(f"{API}/projects/999/stats", headers=annotator),
            "/projects/{project_id}/stats", "get", 404)
    c.check(client.get(f"{API}/projects/999/map", headers=annotator),
            "/projects/{project_id}/map", "get", 404)
    c.check(client.get(f"{API}/jobs/999", headers=annotator), "/jobs/{job_id}", "get", 404)
    c.check(client.delete(f"{API}/annotations/999", headers=annotator),
            "/annotations/{annotation_id}", "delete", 404)
    c.check(client.post(f"{API}/projects/{pid}/annotations", headers=annotator,
                        json={"image_id": 99999, "label": "red"}),
            "/projects/{project_id}/annotations", "post", 404)
    c.check(client.post(f"{API}/projects/{pid}/bulk-label", headers=annotator,
                        json={"image_ids": [99999], "label": "red"}),
            "/projects/{project_id}/bulk-label", "post", 404)

    c.check(client.get(f"{API}/projects/{pid}/next?n=0", headers=annotator),
            "/projects/{project_id}/next", "get", 400)
    c.check(client.post(f"{API}/projects/{pid}/annotations", headers=annotator,
                        json={"image_id": 1}),
            "/projects/{project_id}/annotations", "post", 400)
    c.check(client.post(f"{API}/projects/{pid}/annotations", headers=annotator,
                        data="not json", content_type="text/plain"),
            "/projects/{project_id}/annotations", "post", 400)
    c.check(client.post(f"{API}/projects/{pid}/skip", headers=annotator, json={}),
            "/projects/{project_id}/skip", "post", 400)
    c.check(client.get(f"{API}/projects/{pid}/images?min_confidence=2", headers=annotator),
            "/projects/{project_id}/images", "get", 400)
    c.check(client.post(f"{API}/projects/{pid}/bulk-label", headers=annotator,
                        json={"image_ids": []}),
            "/projects/{project_id}/bulk-label", "post", 400)
    c.check(client.get(f"{API}/projects/{pid}/map?method=tsne", headers=annotator),
            "/projects/{project_id}/map", "get", 400)
    c.check(client.post(f"{API}/projects/{pid}/settings", headers=lead, json={}),
            "/projects/{project_id}/settings", "post", 400)
    c.check(client.post(f"{API}/projects/{pid}/images", headers=lead, data={},
                        content_type="multipart/form-data"),
            "/projects/{project_id}/images", "post", 400)

    # 409: the image is leased to another annotator.
    item = client.get(f"{API}/projects/{pid}/next", headers=annotator).json["items"][0]
    other = auth(create_api_token(create_user("bea", "password-123")))
    c.check(client.post(f"{API}/projects/{pid}/annotations", headers=other,
                        json={"image_id": item["image_id"], "label": "red"}),
            "/projects/{project_id}/annotations", "post", 409)

    # 413: an upload over the size limit.
    app.config["MAX_CONTENT_LENGTH"] = 1024
    c.check(client.post(f"{API}/projects/{pid}/images", headers=lead,
                        content_type="multipart/form-data",
                        data={"files": [(io.BytesIO(b"x" * 4096), "big.png")]}),
            "/projects/{project_id}/images", "post", 413)

    statuses = {status for _, _, status in c.checked}
    assert statuses == {400, 401, 403, 404, 409, 413}


def test_export_download_matches_the_document(client, contract, project,
                                              lead_token):
    path = "/projects/{project_id}/export"
    operation = contract.document["paths"][path]["get"]
    documented_types = set(operation["responses"]["200"]["content"])
    response = client.get(f"{API}/projects/{project.id}/export?format=csv",
                          headers=auth(lead_token))
    assert response.status_code == 200, response.text
    assert response.mimetype in documented_types
    assert "attachment" in response.headers.get("Content-Disposition", "")
    contract.check(client.get(f"{API}/projects/{project.id}/export?format=nope",
                              headers=auth(lead_token)), path, "get", 400)
    contract.check(client.get(f"{API}/projects/999/export?format=csv",
                              headers=auth(lead_token)), path, "get", 404)


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    return document["components"]["schemas"][name]


def _body_schema(document: dict[str, Any], path: str, kind: str = "application/json") -> Any:
    ref = document["paths"][path]["post"]["requestBody"]["content"][kind]["schema"]["$ref"]
    return _schema(document, ref.split("/")[-1])


def _query(document: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    (parameter,) = [p for p in document["paths"][path]["get"]["parameters"]
                    if p["name"] == name]
    return parameter["schema"]


def test_the_document_states_the_constraints_the_server_enforces(document):
    """Each of these was enforced by the server but missing from the hand-written document."""
    new_project = _body_schema(document, "/projects")
    assert new_project["properties"]["name"]["minLength"] == 1
    assert "pattern" in new_project["properties"]["name"]  # a visible character, no NUL
    assert new_project["properties"]["classes"]["items"]["minLength"] == 1
    settings = _body_schema(document, "/projects/{project_id}/settings")
    assert "margin" in settings["properties"]["strategy"]["enum"]
    assert settings["minProperties"] == 1
    bulk = _body_schema(document, "/projects/{project_id}/bulk-label")
    assert len(bulk["oneOf"]) == 2
    assert bulk["properties"]["image_ids"]["items"] == {
        "type": "integer", "minimum": 1, "maximum": 2**31 - 1}
    upload = _body_schema(document, "/projects/{project_id}/images", "multipart/form-data")
    assert upload["required"] == ["files"]
    for name in ("NewProject", "NewAnnotation", "ImageRef", "BulkLabel", "TrainingSettings"):
        assert _schema(document, name)["additionalProperties"] is False, name
    assert _query(document, "/projects/{project_id}/images", "sort")["enum"] == [
        "id", "confidence"]
    assert _query(document, "/projects/{project_id}/images", "limit")["maximum"] == 200
    assert "pattern" in _query(document, "/projects/{project_id}/images", "after")
    for path, item in document["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert parameter["schema"] == {"type": "integer", "minimum": 1,
                                                   "maximum": 2**31 - 1}, path


def test_ids_beyond_64_bits_are_404_in_a_path_and_400_in_a_body(client, project, token):
    """Both crashed with OverflowError (500) before ids were range-checked; ids past
    2**31-1 crashed PostgreSQL's integer columns the same way (DataError)."""
    response = client.delete(f"{API}/annotations/1246410870354013576885174272",
                             headers=auth(token))
    assert response.status_code == 404, response.text
    assert response.json["error"] == "Not Found"
    response = client.post(f"{API}/projects/{project.id}/bulk-label", headers=auth(token),
                           json={"image_ids": [306360960415584681984], "label": "red"})
    assert response.status_code == 400, response.text
    assert "'image_ids[0]'" in response.json["detail"]
    for url in (f"{API}/projects/0/stats", f"{API}/jobs/{2**31}",
                f"{API}/projects/{2**64}/next"):
        assert client.get(url, headers=auth(token)).status_code == 404, url
    response = client.post(f"{API}/projects/{2**31}/skip", headers=auth(token),
                           json={"image_id": 1})
    assert response.status_code == 404, response.text
    response = client.post(f"{API}/projects/{project.id}/skip", headers=auth(token),
                           json={"image_id": 2**31})
    assert response.status_code == 400 and "'image_id'" in response.json["detail"]


def test_405_names_the_allowed_methods(client, project, token):
    for url, method, allowed in ((f"{API}/me", "PUT", "GET"),
                                 (f"{API}/projects/{project.id}/retrain", "GET", "POST"),
                                 ("/auth/login", "DELETE", "POST")):
        response = client.open(url, method=method, headers=auth(token))
        assert response.status_code == 405, (url, response.status_code)
        assert allowed in response.headers["Allow"].split(", "), (url, response.headers)


def test_job_and_round_timestamps_carry_their_offset(app, client, project, token,
                                                     lead_token, alice):
    """SQLite hands back naive datetimes; the API used to print them without an offset."""
    from labeler.jobs import runner

    label_from_queue(project, alice, 12)
    job = client.post(f"{API}/projects/{project.id}/retrain", headers=auth(lead_token)).json
    assert runner(app).wait_idle(60)
    status = client.get(f"{API}/jobs/{job['job_id']}", headers=auth(token)).json
    stats = client.get(f"{API}/projects/{project.id}/stats", headers=auth(token)).json
    stamps = [status["created_at"], status["finished_at"], stats["rounds"][-1]["created_at"]]
    for stamp in stamps:
        assert stamp.endswith("+00:00"), stamps
