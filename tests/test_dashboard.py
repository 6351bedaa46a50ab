"""The lead's dashboard: access, its JSON payload, the settings endpoint and retrain conflicts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from labeler.extensions import db
from labeler.jobs import create_job
from labeler.models import Annotation, JobStatus, utcnow
from labeler.queue import undo
from labeler.training import project_retrain_every, project_strategy
from tests.builders import trained
from tests.conftest import login


def csrf(client, project):
    """Headers with the session's CSRF token, read from a page as the browser would."""
    page = client.get(f"/projects/{project.id}/label").text
    return {"X-CSRFToken": page.split('data-csrf="')[1].split('"')[0]}


def test_anonymous_users_go_to_login(client, project):
    response = client.get(f"/projects/{project.id}/dashboard")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    assert client.get(f"/api/v1/projects/{project.id}/dashboard").status_code == 401


def test_annotators_get_403(client, project, annotator):
    login(client, annotator.username)
    assert client.get(f"/projects/{project.id}/dashboard").status_code == 403
    response = client.get(f"/api/v1/projects/{project.id}/dashboard")
    assert response.status_code == 403 and "leads" in response.json["detail"]
    response = client.post(f"/api/v1/projects/{project.id}/settings", json={"strategy": "random"},
                           headers=csrf(client, project))
    assert response.status_code == 403


def test_page_renders_the_shell_for_a_lead(lead_client, project):
    response = lead_client.get(f"/projects/{project.id}/dashboard")
    assert response.status_code == 200
    html = response.text
    assert 'id="dashboard"' in html and 'data-csrf="' in html
    assert "dashboard.js" in html and 'type="module"' in html
    assert '<option value="margin_diverse"' in html  # choices come from strategies.STRATEGIES
    assert "<script>" not in html  # no inline scripts (Content-Security-Policy)
    assert lead_client.get("/projects/9999/dashboard").status_code == 404


def test_dashboard_json_before_any_trained_round(lead_client, project):
    data = lead_client.get(f"/api/v1/projects/{project.id}/dashboard").json
    assert data["totals"] == {"images": 24, "labelled": 0, "unlabelled": 24, "embedded": 24}
    assert data["curve"] == [] and data["latest_round"] is None
    assert data["annotators"] == []
    assert [j["kind"] for j in data["jobs"]] == ["embed"]
    assert data["any_job_active"] is False


def test_dashboard_json_after_a_trained_round(lead_client, project, annotator):
    trained(project, annotator)
    undone = db.session.query(Annotation).order_by(Annotation.id.desc()).first()
    undo(undone.id, annotator)  # undone labels are not counted
    # One old label: counted in the total, not in the last hour.
    old = db.session.query(Annotation).order_by(Annotation.id).first()
    old.created_at = utcnow() - timedelta(hours=3)
    # The other 14 acts (13 kept, 1 undone) 10 s apart from ten minutes ago: a fixed clock.
    start = utcnow() - timedelta(minutes=10)
    recent = db.session.query(Annotation).filter(Annotation.id != old.id).order_by(Annotation.id)
    for index, annotation in enumerate(recent):
        annotation.created_at = start + timedelta(seconds=10 * index)
    db.session.commit()

    response = lead_client.get(f"/api/v1/projects/{project.id}/dashboard")
    assert response.status_code == 200
    data = response.json

    assert data["totals"]["labelled"] == 14 and data["totals"]["embedded"] == 24
    classes = {c["name"]: c for c in data["classes"]}
    assert set(classes) == {"red", "green", "blue"}
    assert sum(c["labelled"] for c in classes.values()) == 14
    # The round predicted every image; auto-tagged counts only the unlabelled ones.
    assert sum(c["predicted"] for c in classes.values()) == 10
    assert classes["red"]["colour"].startswith("#")

    assert len(data["curve"]) == 1
    point = data["curve"][0]
    assert point["n_labels"] == 15 and 0 <= point["accuracy"] <= 1

    latest = data["latest_round"]
    assert latest["number"] == 2
    assert len(latest["confusion"]) == len(latest["labels"]) == 3
    assert all(len(row) == 3 for row in latest["confusion"])
    assert sum(map(sum, latest["confusion"])) == 15
    assert set(latest["per_class"]) == {"red", "green", "blue"}

    (stats,) = data["annotators"]
    assert stats["username"] == annotator.username
    assert stats["labels"] == 14 and stats["last_hour"] == 13
    # 13 gaps of 10 s, and the isolated old label: 15 acts at 130 / 13 s each.
    assert stats["active_seconds"] == pytest.approx(150.0, abs=0.1)
    assert stats["per_hour"] == pytest.approx(14 * 3600 / 150, abs=0.1)

    kinds = [j["kind"] for j in data["jobs"]]
    assert kinds == ["retrain", "retrain", "embed"]  # newest first
    assert all(j["status"] == "succeeded" for j in data["jobs"])
    assert data["settings"]["strategy"] == "auto"
    assert {s["name"] for s in data["settings"]["strategies"]} >= {"auto", "margin", "random"}


def test_settings_endpoint_saves(lead_client, project):
    headers = csrf(lead_client, project)
    response = lead_client.post(f"/api/v1/projects/{project.id}/settings", headers=headers,
                                json={"strategy": "margin", "retrain_every": 7})
    assert response.status_code == 200, response.json
    assert response.json["strategy"] == "margin" and response.json["retrain_every"] == 7
    db.session.refresh(project)
    assert project_strategy(project) == "margin" and project_retrain_every(project) == 7
    # One field alone leaves the other as it was.
    lead_client.post(f"/api/v1/projects/{project.id}/settings", headers=headers,
                     json={"retrain_every": 3})
    db.session.refresh(project)
    assert project_strategy(project) == "margin" and project_retrain_every(project) == 3


@pytest.mark.parametrize("body, detail", [
    ({"strategy": "clairvoyant"}, "'strategy' should be 'auto', 'random'"),
    ({"retrain_every": 0}, "'retrain_every' should be greater than or equal to 1"),
    ({"retrain_every": "5"}, "'retrain_every' should be a valid integer"),
    ({"retrain_every": 10**9}, "'retrain_every' should be less than or equal to 100000"),
    ({"strategy": None}, "'strategy' should be"),
    ({}, "Send 'strategy' and/or 'retrain_every'"),
])
def test_settings_endpoint_validates(lead_client, project, body, detail):
    response = lead_client.post(f"/api/v1/projects/{project.id}/settings", json=body,
                                headers=csrf(lead_client, project))
    assert response.status_code == 400 and detail in response.json["detail"]
    db.session.refresh(project)
    assert project_strategy(project) == "auto"


def test_retrain_while_one_is_running_is_409_with_a_sentence(lead_client, project):
    running = create_job("retrain", project.id, status=JobStatus.RUNNING)
    response = lead_client.post(f"/api/v1/projects/{project.id}/retrain",
                                headers=csrf(lead_client, project))
    assert response.status_code == 409
    assert f"#{running.id}" in response.json["detail"] and "wait" in response.json["detail"]
    data = lead_client.get(f"/api/v1/projects/{project.id}/dashboard").json
    assert data["any_job_active"] is True and data["jobs"][0]["status"] == "running"


def test_dashboard_shows_calibration_and_the_stopping_hint(lead_client, project, annotator):
    from labeler.jobs import run_inline
    from labeler.queue import lease_next
    from labeler.training import run_round
    from tests.builders import label

    trained(project, annotator, n=9)
    data = lead_client.get(f"/api/v1/projects/{project.id}/dashboard").json
    calibration = data["latest_round"]["calibration"]
    assert calibration["n"] == 9 and calibration["temperature"] > 0
    assert sum(b["count"] for b in calibration["bins"]) == 9
    outlook = data["outlook"]
    assert outlook["low"] <= outlook["accuracy"] <= outlook["high"] and outlook["n"] == 9
    assert outlook["gain_next_100"] is None and "3 rounds" in outlook["note"]

    for _ in range(2):  # two more rounds at more labels: the curve can be fitted
        for image in lease_next(project, annotator, n=3):
            label(project, image, annotator)
        run_inline("retrain", project.id, run_round)
    outlook = lead_client.get(f"/api/v1/projects/{project.id}/dashboard").json["outlook"]
    assert outlook["rounds"] == 3 and outlook["n"] == 15
    assert outlook["gain_next_100"] >= 0 and "next 100 labels" in outlook["note"]


def test_project_show_prints_the_stopping_hint(runner, project, annotator):
    before = runner.invoke(args=["project", "show", project.name]).output
    assert "auto-tag accuracy" not in before
    trained(project, annotator, n=9)
    shown = runner.invoke(args=["project", "show", project.name]).output
    assert "auto-tag accuracy:" in shown and "95 % interval" in shown
    assert "next 100 labels:" in shown


def test_the_fine_tune_button_starts_one_job_and_the_dashboard_shows_both_figures(
        lead_client, project):
    assert 'id="finetune"' in lead_client.get(f"/projects/{project.id}/dashboard").text
    running = create_job("finetune", project.id, status=JobStatus.RUNNING)
    response = lead_client.post(f"/api/v1/projects/{project.id}/finetune",
                                headers=csrf(lead_client, project))
    assert response.status_code == 409 and f"#{running.id}" in response.json["detail"]
    assert lead_client.get(f"/api/v1/projects/{project.id}/dashboard").json["finetune"] is None

    project.settings = {**project.settings, "pending_backbone": "/x/tuned.keras", "finetune": {
        "at": "2026-12-03T14:00:00+00:00", "n_labels": 200, "split": [120, 40, 40],
        "frozen_accuracy": 0.8, "finetuned_accuracy": 0.85, "adopted": True, "epochs": 5,
        "best_epoch": 3, "seconds": {}, "reason": "The fine-tuned backbone beats ..."}}
    db.session.commit()
    shown = lead_client.get(f"/api/v1/projects/{project.id}/dashboard").json["finetune"]

    assert shown == {"at": "2026-12-03T14:00:00+00:00", "n_labels": 200,
                     "frozen_accuracy": 0.8, "finetuned_accuracy": 0.85, "adopted": True,
                     "pending": True, "reason": "The fine-tuned backbone beats ..."}
