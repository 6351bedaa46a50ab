"""Review: the reviewer's queue, accepting and correcting by API, who may review, the
dashboard's figures, and a correction changing what the next round trains on."""

from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import select

from labeler.annotations import record_label
from labeler.extensions import db
from labeler.jobs import run_inline
from labeler.membership import set_member
from labeler.models import Annotation, JobStatus
from labeler.projects import class_by_name
from labeler.review import cohen_kappa
from labeler.training import run_round
from labeler.users import create_api_token
from tests.builders import auth, images, label, true_colour


@pytest.fixture
def reviewer(project, alice):
    set_member(project, alice, "reviewer")
    return auth(create_api_token(alice))


def queue(client, project, headers, order="newest", n=50):
    response = client.get(f"/api/v1/projects/{project.id}/review?order={order}&n={n}",
                          headers=headers)
    assert response.status_code == 200, response.text
    return response.json["items"]


def review(client, project, headers, annotation_id, label=None):
    body = {"annotation_id": annotation_id} | ({"label": label} if label else {})
    return client.post(f"/api/v1/projects/{project.id}/reviews", headers=headers, json=body)


def predicted(project, names):
    db.session.expire_all()
    return {image.original_name: image.predicted_class.name for image in images(project)
            if true_colour(image) in names}


def test_a_review_correction_changes_the_label_the_next_round_trains_on(
        client, project, annotator, reviewer):
    # The annotator calls every red image blue; the model learns that red is blue.
    for image in images(project):
        label(project, image, annotator, "blue" if true_colour(image) == "red" else None)
    assert run_inline("retrain", project.id, run_round).status == JobStatus.SUCCEEDED
    assert set(predicted(project, {"red"}).values()) == {"blue"}

    # The reviewer corrects them (and accepts the rest); the next round learns red.
    by_id = {i.id: i for i in images(project)}
    for item in queue(client, project, reviewer):
        red = true_colour(by_id[item["image_id"]]) == "red"
        response = review(client, project, reviewer, item["annotation_id"],
                          "red" if red else None)
        assert response.status_code == 201, response.text
        assert response.json["annotator"] == "alice"
    assert queue(client, project, reviewer) == []
    db.session.expire_all()
    assert {true_colour(i) for i in images(project)
            if i.label_class_id == class_by_name(project, "red").id} == {"red"}
    assert run_inline("retrain", project.id, run_round).status == JobStatus.SUCCEEDED
    assert set(predicted(project, {"red"}).values()) == {"red"}


def test_queue_orders_and_what_it_leaves_out(client, project, annotator, lead, alice,
                                             reviewer):
    first, second, third, own, imported = images(project)[:5]
    label(project, first, annotator, "red")
    label(project, second, annotator, "red")
    label(project, third, annotator, "green")
    label(project, own, alice, "red")  # the reviewer's own label
    record_label(imported, class_by_name(project, "red"), lead, source="import")
    third.suspected_error = True
    db.session.commit()
    newest = [i["image_id"] for i in queue(client, project, reviewer)]
    assert newest == [third.id, second.id, first.id]  # not its own label, not imports
    assert queue(client, project, reviewer, "suspected")[0]["image_id"] == third.id
    assert sorted(i["image_id"] for i in queue(client, project, reviewer, "random")) == sorted(
        newest)
    accepted = review(client, project, reviewer, queue(client, project, reviewer)[0][
        "annotation_id"])
    assert accepted.status_code == 201 and accepted.json["label"] == "green"
    row = db.session.get(Annotation, accepted.json["annotation_id"])
    assert row.source == "review" and row.reviews_id is not None
    assert third.id not in [i["image_id"] for i in queue(client, project, reviewer)]
    again = review(client, project, reviewer, row.reviews_id)
    assert again.status_code == 409 and "reviewed since" in again.json["detail"]
    mine = db.session.scalar(select(Annotation.id).where(Annotation.image_id == own.id))
    assert review(client, project, reviewer, mine).status_code == 409
    unknown = review(client, project, reviewer, queue(client, project, reviewer)[0][
        "annotation_id"], "purple")
    assert unknown.status_code == 404
    assert client.get(f"/api/v1/projects/{project.id}/review?order=oldest",
                      headers=reviewer).status_code == 400


def test_annotators_may_not_review(client, project, token):
    assert client.get(f"/api/v1/projects/{project.id}/review", headers=auth(token)
                      ).status_code == 403
    assert review(client, project, auth(token), 1).status_code == 403


def test_review_page_is_for_reviewers(client, project, annotator, alice):
    from tests.conftest import login

    login(client, "arno")
    assert client.get(f"/projects/{project.id}/review").status_code == 403
    set_member(project, annotator, "reviewer")
    page = client.get(f"/projects/{project.id}/review")
    assert page.status_code == 200 and "review.js" in page.text


def test_dashboard_figures_per_annotator(client, project, annotator, lead, reviewer):
    given = ["red", "red", "green", "blue", "blue", "green"]
    verdicts = [None, "green", None, None, "red", None]  # None: accepted
    for image, name in zip(images(project), given, strict=False):
        label(project, image, annotator, name)
    items = {i["image_id"]: i for i in queue(client, project, reviewer)}
    for image, verdict in zip(images(project), verdicts, strict=False):
        assert review(client, project, reviewer, items[image.id]["annotation_id"],
                      verdict).status_code == 201
    board = client.get(f"/api/v1/projects/{project.id}/dashboard",
                       headers=auth(create_api_token(lead))).json
    (arno,) = [r for r in board["reviews"] if r["username"] == "arno"]
    final = [v or g for g, v in zip(given, verdicts, strict=True)]
    assert arno["labels"] == 6 and arno["reviewed"] == 6 and arno["accepted"] == 4
    assert arno["accepted_rate"] == pytest.approx(4 / 6, abs=1e-3)
    assert arno["agreement"] == pytest.approx(cohen_kappa_score(given, final), abs=1e-3)


def test_cohen_kappa_matches_scikit_learn():
    pairs = [(1, 1), (1, 2), (2, 2), (3, 3), (3, 1), (2, 2), (1, 1), (3, 3)]
    assert cohen_kappa(pairs) == pytest.approx(cohen_kappa_score(*zip(*pairs, strict=True)))
    assert cohen_kappa([]) is None and cohen_kappa([(1, 1), (1, 1)]) is None
