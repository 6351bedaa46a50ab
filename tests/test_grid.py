"""Grid mode: leasing a grid of one predicted class, and answering it (queue and API)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from labeler import grid_mode
from labeler.extensions import db
from labeler.grid_mode import GRID_BAND, answer_grid, lease_grid
from labeler.models import Annotation, Image
from labeler.projects import class_by_name
from labeler.queue import LeaseConflict, lease_next
from labeler.users import create_api_token, create_user
from tests.builders import auth, everyone_joins, images, true_colour

# Per true colour, the confidences the "model" gives its images (predicted = true colour).
# Red: 8 in the band; green: 5 in the band (edges included) and 3 outside; blue: none.
LOW, HIGH = GRID_BAND
MID = (LOW + HIGH) / 2
CONFIDENCES = {"red": [round(MID - 0.04 + 0.01 * k, 3) for k in (3, 0, 6, 1, 7, 2, 4, 5)],
               "green": [LOW, MID, MID, MID + 0.01, HIGH, HIGH + 0.005, LOW - 0.01, 0.995],
               "blue": [LOW - 0.2] * 8}


def predict(project, confidences=CONFIDENCES, queue=("red", "green", "blue")) -> None:
    """Write predictions as a trained round does: class, confidence, and a queue rank
    (colours in ``queue`` order, each in reverse import order: not the order of ids)."""
    seen: dict[str, int] = {}
    all_images = images(project)
    for image in all_images:
        colour = true_colour(image)
        image.predicted_class_id = class_by_name(project, colour).id
        image.confidence = confidences[colour][seen.get(colour, 0)]
        image.queue_rank = queue.index(colour) * 100 + len(all_images) - image.id
        seen[colour] = seen.get(colour, 0) + 1
    db.session.commit()


def ids(grid_or_images) -> list[int]:
    items = getattr(grid_or_images, "images", grid_or_images)
    return [image.id for image in items]


def test_before_any_prediction_there_is_no_grid_but_a_sentence(project, alice):
    grid = lease_grid(project, alice)
    assert grid.label_class is None and grid.images == []
    assert grid.message == "Grid mode needs a trained round; label in single-image mode first."


def test_the_fullest_class_in_the_band_is_leased_most_confident_first(project, alice):
    predict(project)
    grid = lease_grid(project, alice, n=16)
    assert grid.label_class.name == "red"
    assert {true_colour(image) for image in grid.images} == {"red"}
    assert len(grid.images) == 8
    assert [image.confidence for image in grid.images] == sorted(CONFIDENCES["red"],
                                                                 reverse=True)
    assert all(image.leased_to_id == alice.id for image in grid.images)


def test_a_grid_can_follow_the_queue_order_instead(project, alice, monkeypatch):
    monkeypatch.setattr(grid_mode, "GRID_ORDER", "queue")
    predict(project)
    grid = lease_grid(project, alice, n=12)
    ranks = [image.queue_rank for image in grid.images]
    assert grid.label_class.name == "red" and len(ranks) == 8 and ranks == sorted(ranks)


def test_only_images_in_the_band_are_in_a_grid(project, alice, annotator):
    predict(project)
    lease_grid(project, alice)  # takes every red image
    grid = lease_grid(project, annotator)
    assert grid.label_class.name == "green"
    assert sorted(image.confidence for image in grid.images) == [LOW, MID, MID, MID + 0.01,
                                                                  HIGH]


def test_too_few_images_in_every_band_is_a_sentence_not_an_error(project, alice):
    predict(project, {"red": [0.99] * 8, "green": [MID] * 3 + [0.2] * 5, "blue": [0.3] * 8})
    grid = lease_grid(project, alice)
    assert grid.label_class is None and grid.images == []
    assert grid.message.startswith("No class has 4 or more unlabelled images")
    assert "single-image mode" in grid.message


def test_an_image_someone_else_holds_is_never_in_a_grid(project, alice, annotator):
    predict(project)
    held = ids(lease_next(project, annotator, n=3))  # the queue's top three: red images
    assert {true_colour(db.session.get(Image, i)) for i in held} == {"red"}
    grid = lease_grid(project, alice)
    assert grid.label_class.name == "red" and len(grid.images) == 5
    assert not set(held) & set(ids(grid))


def test_two_annotators_get_disjoint_grids_and_a_reload_keeps_the_grid(project, alice,
                                                                         annotator):
    predict(project)
    first, second = lease_grid(project, alice), lease_grid(project, annotator)
    assert first.images and second.images
    assert not set(ids(first)) & set(ids(second))
    assert first.label_class.name == "red" and second.label_class.name == "green"
    assert ids(lease_grid(project, alice)) == ids(first)  # her leases come back, renewed


def test_answer_labels_the_confirmed_and_sends_the_rejected_to_single_image_mode(
        project, alice):
    predict(project, queue=("blue", "green", "red"))  # red grids: the end of the queue
    grid = lease_grid(project, alice)
    confirm, reject = ids(grid)[:6], ids(grid)[6:]
    red = class_by_name(project, "red")
    assert answer_grid(project, alice, red, confirm, reject) == (6, 2)
    for image_id in confirm:
        image = db.session.get(Image, image_id)
        assert image.label_class_id == red.id and image.leased_to_id is None
    annotations = db.session.scalars(select(Annotation).where(
        Annotation.image_id.in_(confirm))).all()
    assert {a.annotator_id for a in annotations} == {alice.id} and len(annotations) == 6
    for image_id in reject:
        image = db.session.get(Image, image_id)
        assert image.label_class_id is None and image.leased_to_id is None
    # The model was wrong about the rejected: single-image mode asks them first, and they
    # stay out of grids until the next round.
    assert set(ids(lease_next(project, alice, n=2))) == set(reject)
    assert not set(reject) & set(ids(lease_grid(project, alice)))


def test_answer_refuses_images_not_leased_to_the_user_and_writes_nothing(project, alice,
                                                                           annotator):
    predict(project)
    mine, theirs = lease_grid(project, alice), lease_grid(project, annotator)
    red = class_by_name(project, "red")
    with pytest.raises(LeaseConflict, match="not leased to you"):
        answer_grid(project, alice, red, ids(mine)[:3] + ids(theirs)[:1], ids(mine)[3:4])
    never_leased = next(i for i in ids(images(project))
                        if i not in ids(mine) + ids(theirs))
    with pytest.raises(LeaseConflict):
        answer_grid(project, alice, red, [never_leased], [])
    assert all(db.session.get(Image, i).label_class_id is None for i in ids(mine))
    assert all(db.session.get(Image, i).leased_to_id == alice.id for i in ids(mine))


# --- the API -------------------------------------------------------------------------------


@pytest.fixture
def predicted(project):
    predict(project)
    return project


def test_api_grid_then_answer(client, predicted, token):
    url = f"/api/v1/projects/{predicted.id}/grid"
    grid = client.get(f"{url}?n=12", headers=auth(token))
    assert grid.status_code == 200, grid.json
    assert grid.json["label"] == "red" and grid.json["message"] == ""
    items = grid.json["items"]
    assert len(items) == 8 and all(i["prediction"]["label"] == "red" for i in items)
    image_ids = [item["image_id"] for item in items]
    answer = client.post(url, headers=auth(token), json={
        "label": "red", "confirm": image_ids[:6], "reject": image_ids[6:]})
    assert answer.status_code == 200, answer.json
    assert answer.json == {"label": "red", "confirmed": 6, "released": 2}
    stats = client.get(f"/api/v1/projects/{predicted.id}/stats", headers=auth(token)).json
    assert stats["counts"]["labelled"] == 6


def test_api_an_empty_answer_changes_nothing(client, predicted, token):
    response = client.post(f"/api/v1/projects/{predicted.id}/grid", headers=auth(token),
                           json={"label": "red"})
    assert response.status_code == 200
    assert response.json == {"label": "red", "confirmed": 0, "released": 0}


def test_api_no_grid_is_200_with_a_message(client, project, token):
    response = client.get(f"/api/v1/projects/{project.id}/grid", headers=auth(token))
    assert response.status_code == 200
    assert response.json["label"] is None and response.json["items"] == []
    assert "needs a trained round" in response.json["message"]


def test_api_images_leased_to_someone_else_are_409(client, predicted, token):
    other = create_api_token(create_user("bea", "password-123"))
    everyone_joins()
    url = f"/api/v1/projects/{predicted.id}/grid"
    theirs = [i["image_id"] for i in client.get(url, headers=auth(other)).json["items"]]
    response = client.post(url, headers=auth(token),
                           json={"label": "red", "confirm": theirs[:2]})
    assert response.status_code == 409 and "not leased to you" in response.json["detail"]


@pytest.mark.parametrize("body, status, detail", [
    ({"label": "red", "confirm": [999]}, 404, "Image 999 is not in project"),
    ({"label": "purple", "confirm": [1]}, 404, "has no class 'purple'"),
    ({"label": "red", "confirm": [1], "reject": [1]}, 409, "both confirmed and rejected"),
    ({"label": "red", "reject": [2, 2]}, 400, "Each image id may appear once in 'reject'"),
    ({"label": "red", "confirm": ["1"]}, 400, "should be a valid integer"),
    ({"label": "red", "confirm": [0]}, 400, "greater than or equal to 1"),
    ({"confirm": [1]}, 400, "Missing field 'label'"),
    ({"label": "red", "confirm": list(range(1, 26))}, 400, "at most 24 items"),
    ({"label": "red", "confirm": [1], "class": "red"}, 400, "'class' is not one"),
])
def test_api_bad_answers_are_4xx_with_a_sentence(client, predicted, token, body, status,
                                                 detail):
    response = client.post(f"/api/v1/projects/{predicted.id}/grid", headers=auth(token),
                           json=body)
    assert response.status_code == status, response.json
    assert detail in response.json["detail"]


@pytest.mark.parametrize("query", ["n=11", "n=25", "n=x", "size=12"])
def test_api_bad_grid_sizes_are_400(client, predicted, token, query):
    response = client.get(f"/api/v1/projects/{predicted.id}/grid?{query}", headers=auth(token))
    assert response.status_code == 400 and response.json["detail"]


def test_api_grid_of_a_missing_project_is_404(client, token):
    assert client.get("/api/v1/projects/999/grid", headers=auth(token)).status_code == 404
