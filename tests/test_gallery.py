"""The gallery: filters, keyset pages, bulk labelling, the image page, escaping."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from labeler.annotations import record_label, undo_annotation
from labeler.extensions import db
from labeler.models import Annotation, Image
from labeler.projects import class_by_name
from tests.conftest import login


@pytest.fixture
def predicted(project):
    """The colour project with known predictions: image i gets a class and confidence.

    Images are assigned round-robin red/green/blue with confidence 0.50, 0.55, ... and
    every 5th image is a suspected error; images 0-2 share duplicate group 7.
    """
    classes = [class_by_name(project, name) for name in ("red", "green", "blue")]
    images = db.session.scalars(select(Image).where(Image.project_id == project.id)
                                .order_by(Image.id)).all()
    for i, image in enumerate(images):
        image.predicted_class_id = classes[i % 3].id
        image.confidence = round(0.5 + 0.02 * i, 4)
        image.suspected_error = i % 5 == 0
        image.duplicate_group = 7 if i < 3 else None
    db.session.commit()
    return project


def ids_of(items):
    return [item["image_id"] for item in items]


def fetch(client, project, **args):
    response = client.get(f"/api/v1/projects/{project.id}/images", query_string=args)
    assert response.status_code == 200, response.json
    return response.json


def all_images(project):
    return db.session.scalars(select(Image).where(Image.project_id == project.id)
                              .order_by(Image.id)).all()


def test_filters_by_prediction_confidence_label_suspected_and_group(lead_client, predicted):
    images = all_images(predicted)
    red = class_by_name(predicted, "red")
    green = class_by_name(predicted, "green")

    data = fetch(lead_client, predicted, predicted="red")
    assert data["total"] == 8
    assert {i["predicted"] for i in data["items"]} == {"red"}

    data = fetch(lead_client, predicted, predicted="green", min_confidence="0.6")
    expected = [im.id for im in images if im.predicted_class_id == green.id
                and im.confidence >= 0.6]
    assert ids_of(data["items"]) == expected and data["total"] == len(expected)

    data = fetch(lead_client, predicted, max_confidence="0.55")
    assert ids_of(data["items"]) == [im.id for im in images if im.confidence <= 0.55]

    data = fetch(lead_client, predicted, suspected="1")
    assert ids_of(data["items"]) == [im.id for i, im in enumerate(images) if i % 5 == 0]
    assert all(item["suspected_error"] for item in data["items"])

    assert ids_of(fetch(lead_client, predicted, duplicate_group="7")["items"]) == [
        im.id for im in images[:3]]
    assert fetch(lead_client, predicted, duplicate_group="any")["total"] == 3
    assert fetch(lead_client, predicted, duplicate_group="8")["total"] == 0

    record_label(images[4], red)
    db.session.commit()
    assert ids_of(fetch(lead_client, predicted, label="red")["items"]) == [images[4].id]
    assert ids_of(fetch(lead_client, predicted, label="labelled")["items"]) == [images[4].id]
    assert fetch(lead_client, predicted, label="unlabelled")["total"] == len(images) - 1
    item = fetch(lead_client, predicted, label="red")["items"][0]
    assert item["label"] == "red" and item["thumbnail_url"].endswith("/thumbnail")
    assert set(item) >= {"image_id", "thumbnail_url", "label", "predicted", "confidence",
                         "suspected_error", "duplicate_group"}


@pytest.mark.parametrize("args", [{"predicted": "purple"}, {"label": "purple"}])
def test_a_filter_naming_a_class_the_project_lacks_is_404(lead_client, predicted, args):
    response = lead_client.get(f"/api/v1/projects/{predicted.id}/images", query_string=args)
    assert response.status_code == 404 and "does not have" in response.json["detail"]


@pytest.mark.parametrize("args", [
    {"min_confidence": "0.9", "max_confidence": "0.1"},  # nothing lies in that range
    {"after": "9" * 19},  # beyond every id (and beyond 64 bits)
    {"after": "none:" + "9" * 19, "sort": "confidence"},
])
def test_filters_nothing_can_match_give_an_empty_page(lead_client, predicted, args):
    response = lead_client.get(f"/api/v1/projects/{predicted.id}/images", query_string=args)
    assert response.status_code == 200, response.json
    assert response.json["items"] == [] and response.json["next_cursor"] is None


@pytest.mark.parametrize("args, detail", [
    ({"min_confidence": "high"}, "'min_confidence' should be a valid number"),
    ({"max_confidence": "1.5"}, "'max_confidence' should be less than or equal to 1"),
    ({"duplicate_group": "x"}, "group number"),
    ({"duplicate_group": "9" * 10}, "group number"),
    ({"sort": "random"}, "'sort' should be 'id' or 'confidence'"),
    ({"after": "abc"}, "next_cursor"),
    ({"limit": "0"}, "'limit'"),
    ({"colour": "red"}, "'colour' is not one this request takes"),
])
def test_bad_filters_are_400_with_a_sentence(lead_client, predicted, args, detail):
    response = lead_client.get(f"/api/v1/projects/{predicted.id}/images", query_string=args)
    assert response.status_code == 400 and detail in response.json["detail"]


@pytest.mark.parametrize("sort", ["id", "confidence"])
def test_keyset_pages_return_every_image_exactly_once(lead_client, predicted, sort):
    images = all_images(predicted)
    images[5].confidence = images[6].confidence = 0.6  # ties are broken by id
    images[7].predicted_class_id, images[7].confidence = None, None  # no prediction: last
    db.session.commit()
    seen, after, pages = [], "", 0
    while True:
        data = fetch(lead_client, predicted, sort=sort, limit=5, after=after)
        assert data["total"] == len(images)
        seen += ids_of(data["items"])
        pages += 1
        if not data["next_cursor"]:
            break
        after = data["next_cursor"]
    assert sorted(seen) == [im.id for im in images] and len(seen) == len(set(seen))
    assert pages == 5  # 24 images, 5 per page
    if sort == "confidence":
        confidences = [im.confidence for im in sorted(
            images, key=lambda im: seen.index(im.id))]
        assert confidences[-1] is None
        assert confidences[:-1] == sorted(confidences[:-1])
    else:
        assert seen == sorted(seen)


def test_keyset_pages_with_a_filter(lead_client, predicted):
    seen, after = [], ""
    while True:
        data = fetch(lead_client, predicted, predicted="blue", limit=3, after=after)
        seen += ids_of(data["items"])
        if not data["next_cursor"]:
            break
        after = data["next_cursor"]
    assert len(seen) == len(set(seen)) == 8 == data["total"]


def post_bulk(client, project, body):
    """POST to bulk-label as the page does: with the session's CSRF token from the page."""
    html = client.get(f"/projects/{project.id}/gallery").text
    token = html.split('data-csrf="')[1].split('"')[0]
    return client.post(f"/api/v1/projects/{project.id}/bulk-label", json=body,
                       headers={"X-CSRFToken": token})


def count_annotations(**where):
    query = select(func.count()).select_from(Annotation)
    for name, value in where.items():
        query = query.where(getattr(Annotation, name) == value)
    return db.session.scalar(query)


def test_bulk_confirm_labels_each_image_with_its_prediction(app, client, annotator, predicted):
    login(client, annotator.username)
    images = all_images(predicted)[:6]
    response = post_bulk(client, predicted, {"image_ids": [im.id for im in images],
                                             "confirm_predictions": True})
    assert response.status_code == 200, response.json
    assert response.json["updated"] == 6
    db.session.expire_all()
    for image in images:
        assert image.label_class_id == image.predicted_class_id
    assert count_annotations(source="gallery", annotator_id=annotator.id) == 6
    assert [i["label"] for i in response.json["items"]] == ["red", "green", "blue"] * 2


def test_bulk_set_label_corrects_labels_in_one_go(lead_client, lead, predicted):
    images = all_images(predicted)[:4]
    record_label(images[0], class_by_name(predicted, "green"), lead)
    db.session.commit()
    response = post_bulk(lead_client, predicted,
                         {"image_ids": [im.id for im in images], "label": "blue"})
    assert response.status_code == 200, response.json
    db.session.expire_all()
    blue = class_by_name(predicted, "blue")
    assert all(im.label_class_id == blue.id for im in images)
    assert count_annotations(source="gallery") == 4
    assert count_annotations(image_id=images[0].id) == 2  # the history keeps the old label
    listed = fetch(lead_client, predicted, label="blue")
    assert sorted(ids_of(listed["items"])) == sorted(im.id for im in images)


def test_bulk_label_can_start_a_retrain_round(app, lead_client, predicted, monkeypatch):
    from labeler.api import gallery as gallery_api

    calls = []
    monkeypatch.setattr(gallery_api, "maybe_submit_retrain",
                        lambda app, proj: calls.append(proj.id))
    image = all_images(predicted)[0]
    post_bulk(lead_client, predicted, {"image_ids": [image.id], "label": "red"})
    assert calls == [predicted.id]


def test_bulk_label_refuses_bad_requests_and_labels_nothing(lead_client, predicted):
    from labeler.projects import create_project

    other = create_project("other", ["x"])
    images = all_images(predicted)

    foreign = Image(project_id=other.id, sha256="f" * 64, original_name="x.png", format="PNG",
                    width=1, height=1, size_bytes=1)
    db.session.add(foreign)
    db.session.commit()
    cases = [
        ({"image_ids": [images[0].id, foreign.id], "label": "red"}, 404, "not in project"),
        ({"image_ids": [images[0].id, 999999], "label": "red"}, 404, "999999"),
        ({"image_ids": list(range(1, 502)), "label": "red"}, 400, "at most 500 items"),
        ({"image_ids": [], "label": "red"}, 400, "at least 1 item"),
        ({"image_ids": ["1"], "label": "red"}, 400, "'image_ids[0]' should be a valid integer"),
        ({"image_ids": [306360960415584681984], "label": "red"}, 400,
         "'image_ids[0]' should be less than or equal to 2147483647"),
        ({"image_ids": [images[0].id], "label": "purple"}, 404, "no class 'purple'"),
        ({"image_ids": [images[0].id]}, 400, "either 'label'"),
        ({"image_ids": [images[0].id], "label": "red", "confirm_predictions": True}, 400,
         "not both"),
        ({"label": "red"}, 400, "Missing field 'image_ids'"),
    ]
    for body, status, detail in cases:
        response = post_bulk(lead_client, predicted, body)
        assert response.status_code == status, (body, response.json)
        assert detail in response.json["detail"], (body, response.json)

    images[1].predicted_class_id, images[1].confidence = None, None
    db.session.commit()
    response = post_bulk(lead_client, predicted, {"image_ids": [images[0].id, images[1].id],
                                                  "confirm_predictions": True})
    assert response.status_code == 409 and "no prediction yet" in response.json["detail"]
    html = lead_client.get(f"/projects/{predicted.id}/gallery").text
    token = html.split('data-csrf="')[1].split('"')[0]
    assert lead_client.post("/api/v1/projects/999/bulk-label", headers={"X-CSRFToken": token},
                            json={"image_ids": [1], "label": "red"}).status_code == 404
    assert count_annotations() == 0  # all or nothing


def test_anonymous_users_are_sent_to_log_in(client, predicted):
    image = all_images(predicted)[0]
    for url in (f"/projects/{predicted.id}/gallery",
                f"/projects/{predicted.id}/images/{image.id}"):
        response = client.get(url)
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    assert client.get(f"/api/v1/projects/{predicted.id}/images").status_code == 401
    assert client.post(f"/api/v1/projects/{predicted.id}/bulk-label",
                       json={"image_ids": [image.id], "label": "red"}).status_code == 401


def test_gallery_page_renders_tiles_filters_and_counts(client, annotator, predicted):
    login(client, annotator.username)
    response = client.get(f"/projects/{predicted.id}/gallery?predicted=red&min_confidence=0.6")
    assert response.status_code == 200
    html = response.text
    images = all_images(predicted)
    red = class_by_name(predicted, "red")
    expected = [im for im in images if im.predicted_class_id == red.id and im.confidence >= 0.6]
    assert html.count('class="g-tile"') == len(expected)
    assert f"<strong id=\"g-total\">{len(expected)}</strong>" in html
    assert 'loading="lazy"' in html and 'value="0.6"' in html
    assert f'data-image-id="{expected[0].id}"' in html
    assert "<script>" not in html and " onclick=" not in html  # no inline scripts (CSP)


def test_gallery_page_shows_a_bad_filter_as_a_sentence(lead_client, predicted):
    response = lead_client.get(f"/projects/{predicted.id}/gallery?min_confidence=2")
    assert response.status_code == 200
    assert "must be from 0 to 1" in response.text and "could not be used" in response.text


def test_gallery_pages_past_the_first_page_use_load_more(lead_client, predicted):
    html = lead_client.get(f"/projects/{predicted.id}/gallery").text
    assert 'data-next-cursor=""' in html  # 24 images fit on one page of 100
    assert 'id="g-load-more" hidden' in html


def test_empty_project_tells_the_user_what_to_do(lead_client):
    from labeler.projects import create_project

    empty = create_project("empty", ["a"])
    html = lead_client.get(f"/projects/{empty.id}/gallery").text
    assert "No images in this project yet" in html


def test_detail_page_shows_image_prediction_and_history_with_undone(
        client, lead, annotator, predicted):
    image = all_images(predicted)[0]
    first = record_label(image, class_by_name(predicted, "green"), annotator)
    db.session.commit()
    undo_annotation(first)
    record_label(image, class_by_name(predicted, "red"), lead, source="gallery")
    db.session.commit()
    login(client, annotator.username)
    response = client.get(f"/projects/{predicted.id}/images/{image.id}")
    assert response.status_code == 200
    html = response.text
    assert f"/images/{image.id}/display" in html
    assert image.sha256 in html and f"{image.width} × {image.height}" in html
    assert "50.0 % confident" in html and "red" in html
    assert "Undone" in html and "Current" in html
    assert "arno" in html and "lena" in html and "gallery" in html
    assert 'class="d-undone"' in html
    assert "see the group" in html  # image 0 is in duplicate group 7


def test_detail_page_of_another_projects_image_is_404(lead_client, predicted):
    from labeler.projects import create_project

    other = create_project("other", ["x"])
    image = all_images(predicted)[0]
    assert lead_client.get(f"/projects/{other.id}/images/{image.id}").status_code == 404
    assert lead_client.get(f"/projects/{predicted.id}/images/999999").status_code == 404


def test_names_with_markup_are_escaped(lead_client, lead, predicted):
    from labeler.projects import add_class

    evil = add_class(predicted, "<script>alert(1)</script>")
    image = all_images(predicted)[0]
    image.original_name = "<img src=x onerror=alert(2)>.png"
    record_label(image, evil, lead)
    db.session.commit()
    for url in (f"/projects/{predicted.id}/gallery",
                f"/projects/{predicted.id}/images/{image.id}"):
        html = lead_client.get(url).text
        assert "<script>alert(1)" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    data = fetch(lead_client, predicted, label="<script>alert(1)</script>")
    assert data["items"][0]["label"] == "<script>alert(1)</script>"  # JSON, shown by textContent


def test_items_say_which_images_pages_draw_with_crisp_pixels(lead_client, predicted):
    from labeler.api.serialize import pixelated

    item = fetch(lead_client, predicted)["items"][0]
    assert (item["width"], item["height"], item["pixelated"]) == (64, 48, True)  # < 128 px
    assert not pixelated(Image(width=640, height=100))
    page = lead_client.get(f"/projects/{predicted.id}/gallery").text
    assert 'class="g-thumb g-pixelated"' in page
    assert 'data-duplicate-group="7"' in page and "≈7" in page and "dup 7" not in page
