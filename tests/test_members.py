"""Project members: the upgrade that keeps everyone's rights, the CLI and the members page
and API. Who may reach which route is tests/test_permissions.py's."""

from __future__ import annotations

from pathlib import Path

from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, select

from labeler import create_app
from labeler.extensions import db
from labeler.models import Project, ProjectMember, User
from labeler.resources import resource_dir
from tests.dbutil import database_config

BEFORE = "6a7afa1e819e"  # the revision before project members


def test_upgrade_makes_every_user_a_member_of_every_project_with_their_rights(
        tmp_path: Path) -> None:
    app = create_app({"HOME": tmp_path, **database_config(tmp_path, empty=True)})
    directory = str(resource_dir("migrations"))
    with app.app_context():
        try:
            upgrade(directory=directory, revision=BEFORE)
            with db.engine.begin() as connection:
                connection.execute(Project.__table__.insert(),
                                   [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}])
                connection.execute(User.__table__.insert(), [
                    {"id": i, "username": name, "password_hash": "x", "role": role,
                     "active": True} for i, (name, role) in enumerate(
                        [("lena", "lead"), ("arno", "annotator"), ("alice", "annotator")], 1)])
            upgrade(directory=directory)
            with db.engine.connect() as connection:
                rows = set(connection.execute(select(ProjectMember.project_id,
                                                     ProjectMember.user_id,
                                                     ProjectMember.role)))
            assert rows == {(p, 1, "lead") for p in (1, 2)} | {
                (p, u, "annotator") for p in (1, 2) for u in (2, 3)}
            downgrade(directory=directory, revision=BEFORE)
            assert "project_member" not in inspect(db.engine).get_table_names()
        finally:
            db.engine.dispose()


def test_cli_adds_lists_changes_and_removes_members(runner, project, annotator):
    from labeler.membership import project_role

    project_role_now = lambda: project_role(annotator, project.id)  # noqa: E731
    result = runner.invoke(args=["project", "member", "remove", project.name, "arno"])
    assert result.exit_code == 0, result.output
    assert project_role_now() is None
    result = runner.invoke(args=["project", "member", "list", project.name])
    assert "arno" not in result.output
    result = runner.invoke(args=["project", "member", "add", project.name, "arno",
                                 "--role", "reviewer"])
    assert result.exit_code == 0, result.output
    assert project_role_now() == "reviewer"
    result = runner.invoke(args=["project", "member", "add", project.name, "arno",
                                 "--role", "lead"])
    assert project_role_now() == "lead"
    assert "arno  lead" in runner.invoke(args=["project", "member", "list",
                                               project.name]).output
    result = runner.invoke(args=["project", "member", "add", project.name, "nobody"])
    assert result.exit_code == 1 and "no user named 'nobody'" in result.output
    result = runner.invoke(args=["project", "member", "add", project.name, "arno",
                                 "--role", "boss"])
    assert result.exit_code == 2 and "boss" in result.output


def test_members_page_adds_changes_and_removes_with_csrf(tmp_path: Path) -> None:
    """With CSRF on, as in production: the forms carry their token; a post without is 400."""
    from tests.builders import PASSWORD
    from tests.conftest import migrated_app

    with migrated_app(tmp_path / "data", WTF_CSRF_ENABLED=True) as app:
        from labeler.membership import project_role
        from labeler.projects import create_project
        from labeler.users import create_user

        lead = create_user("lena", PASSWORD, "lead")
        arno = create_user("arno", PASSWORD, "annotator")
        project = create_project("birds", ["a", "b"], creator=lead)
        client = app.test_client()
        page = client.get("/auth/login")
        token = _csrf(page.text)
        client.post("/auth/login", data={"username": "lena", "password": PASSWORD,
                                         "csrf_token": token})
        url = f"/projects/{project.id}/members"
        assert client.post(url, data={"username": "arno", "role": "annotator"}).status_code \
            == 400  # no CSRF token
        assert project_role(arno, project.id) is None
        page = client.get(url)
        assert page.status_code == 200 and "lena" in page.text  # the creator leads it
        response = client.post(url, data={"username": "arno", "role": "reviewer",
                                          "csrf_token": _csrf(page.text)})
        assert response.status_code == 302
        assert project_role(arno, project.id) == "reviewer"
        page = client.get(url)
        missing = client.post(url, data={"username": "ghost", "role": "annotator",
                                         "csrf_token": _csrf(page.text)})
        assert missing.status_code == 400 and "no user named" in missing.text
        change = f"{url}/{arno.id}"
        client.post(change, data={"m2-role": "lead", "m2-csrf_token": _csrf(page.text)})
        assert project_role(arno, project.id) == "lead"
        client.post(change, data={"m2-role": "lead", "m2-remove": "y",
                                  "m2-csrf_token": _csrf(page.text)})
        assert project_role(arno, project.id) is None


def _csrf(html: str) -> str:
    import re

    return re.search(r'name="(?:\w+-)?csrf_token" type="hidden" value="([^"]+)"', html)[1]


def test_members_api(client, project, annotator, lead):
    from labeler.users import create_api_token

    bearer = {"Authorization": f"Bearer {create_api_token(lead)}"}
    url = f"/api/v1/projects/{project.id}/members"
    listed = client.get(url, headers=bearer).get_json()["members"]
    assert {"user_id": annotator.id, "username": "arno", "role": "annotator"} in listed
    changed = client.put(url, headers=bearer, json={"username": "arno", "role": "reviewer"})
    assert changed.status_code == 200 and changed.get_json()["role"] == "reviewer"
    bad = client.put(url, headers=bearer, json={"username": "arno", "role": "boss"})
    assert bad.status_code == 400 and "role" in bad.get_json()["detail"]
    unknown = client.put(url, headers=bearer, json={"username": "zed", "role": "lead"})
    assert unknown.status_code == 404 and "labeler user create" in unknown.get_json()["detail"]
    left = client.delete(f"{url}/{annotator.id}", headers=bearer).get_json()["members"]
    assert "arno" not in [m["username"] for m in left]
    again = client.delete(f"{url}/{annotator.id}", headers=bearer)
    assert again.status_code == 404


def test_creating_a_project_on_the_web_makes_its_creator_its_lead(client, lead):
    from labeler.membership import members
    from labeler.users import create_api_token

    response = client.post("/api/v1/projects", json={"name": "new one"},
                           headers={"Authorization": f"Bearer {create_api_token(lead)}"})
    assert response.status_code == 201
    project = db.session.get(Project, response.get_json()["id"])
    assert [(m.user.username, m.role) for m in members(project)] == [("lena", "lead")]
