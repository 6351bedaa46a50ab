"""A multi-label project in a real Chromium: created with the checkbox, tagged by keyboard,
filtered and changed in bulk in the gallery, measured on the dashboard.

The images are real: 2×2 mosaics of the demo's Fashion-MNIST items, tagged with the kinds
of item they hold (tests/e2e/fashion.py).
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from labeler.annotations import annotation_tag_ids, image_tag_ids
from labeler.extensions import db
from labeler.models import Annotation, Image, ImageTagScore, JobStatus, ModelRound, Project
from labeler.training import set_training_options
from tests.conftest import PASSWORD
from tests.e2e.conftest import log_in, screenshot
from tests.e2e.fashion import MOSAIC_TAGS, import_mosaics

pytestmark = pytest.mark.e2e

TAGS = list(MOSAIC_TAGS)  # keys 1, 2, 3, 4 in this order
KEY = {tag: str(i + 1) for i, tag in enumerate(TAGS)}
THRESHOLDS = {"top": 0.5, "trouser": 0.4, "sneaker": 0.55, "bag": 0.5}


def give_tag_predictions(project: Project, truth: dict[str, list[str]]) -> dict[int, list[str]]:
    """Per-tag probabilities as a trained round leaves them: mostly right, every fifth
    image with one tag wrong. Returns each image's predicted tags."""
    classes = {c.name: c for c in project.classes}
    predicted = {}
    images = db.session.scalars(select(Image).where(Image.project_id == project.id)
                                .order_by(Image.id)).all()
    for i, image in enumerate(images):
        tags = set(truth[image.original_name])
        if i % 5 == 2:
            tags ^= {TAGS[i % 4]}  # the model misses a tag, or sees one that is not there
        for k, tag in enumerate(TAGS):
            p = 0.62 + 0.07 * k if tag in tags else 0.08 + 0.05 * k
            db.session.add(ImageTagScore(image_id=image.id, label_class_id=classes[tag].id,
                                         probability=p))
        predicted[image.id] = [t for t in TAGS if t in tags]
    db.session.add(ModelRound(project_id=project.id, number=1, status=JobStatus.SUCCEEDED,
                              n_labels=0, strategy="cold start",
                              metrics={"kind": "multi_label", "thresholds": THRESHOLDS}))
    db.session.commit()
    return predicted


def tag_state(page) -> dict[str, tuple[bool, bool]]:
    """Each tag button's (toggled on, marked as the model's suggestion)."""
    return {tag: (page.get_attribute(f".tag-button[data-label='{tag}']", "aria-pressed") == "true",
                  "tag-suggested" in page.get_attribute(f".tag-button[data-label='{tag}']",
                                                        "class"))
            for tag in TAGS}


def current_image(page) -> tuple[int, str]:
    return (int(page.get_attribute("#current-image", "data-image-id")),
            page.text_content("#stage-caption"))


def wait_for_next(page, image_id: int) -> None:
    page.wait_for_function(
        f"document.getElementById('current-image').dataset.imageId !== '{image_id}'")


def toggle_to(page, wanted: list[str]) -> None:
    """Press the keys that make the toggled tags exactly ``wanted``."""
    for tag, (on, _) in tag_state(page).items():
        if on != (tag in wanted):
            page.keyboard.press(KEY[tag])


def test_new_project_page_creates_a_tag_project(page, live_server, lead):
    log_in(page, live_server, lead.username, PASSWORD)
    page.goto(f"{live_server}/projects/new")
    assert "any number of tags" in page.text_content("#multi-label-hint")
    page.fill("input[name=name]", "mosaics")
    page.fill("input[name=classes]", ", ".join(TAGS))
    page.check("input[name=multi_label]")
    page.click("main button[type=submit]")
    page.wait_for_selector("h1 .kind-tags")
    project = db.session.scalar(select(Project).where(Project.name == "mosaics"))
    assert project.multi_label and [c.name for c in project.classes] == TAGS
    page.goto(f"{live_server}/projects/new")  # unticked: one class per image, as before
    page.fill("input[name=name]", "plain")
    page.fill("input[name=classes]", "a, b")
    page.click("main button[type=submit]")
    page.wait_for_selector("h1 .kind-classes")
    assert not db.session.scalar(select(Project).where(Project.name == "plain")).multi_label
    page.goto(f"{live_server}/")
    assert page.locator("td .kind-tags").count() == 1
    assert page.locator("td .kind-classes").count() == 1


@pytest.fixture
def mosaics(app, lead):
    """Project "mosaics": 24 tagged mosaics, embedded, with a round's predictions."""
    from labeler.projects import create_project
    from tests.fakes import FAKE_BACKBONE

    project = create_project("mosaics", TAGS, backbone=FAKE_BACKBONE, multi_label=True)
    truth = import_mosaics(project, 24)
    # No round is due while the test looks: one would replace the predictions below.
    set_training_options(project, retrain_every=1000)
    predicted = give_tag_predictions(project, truth)
    return project, truth, predicted


def active_answers(project: Project) -> dict[int, list[str]]:
    """Image id -> the tags of its annotation not undone (the pages' answers)."""
    names = {c.id: c.name for c in project.classes}
    db.session.expire_all()
    rows = db.session.scalars(select(Annotation).where(Annotation.project_id == project.id,
                                                       Annotation.undone_at.is_(None))).all()
    tags = annotation_tag_ids([a.id for a in rows])
    assert all(a.label_class_id is None for a in rows)
    return {a.image_id: [names[t] for t in tags[a.id]] for a in rows}


def test_label_tags_by_keyboard_with_suggestions_empty_set_undo_and_skip(
        page, live_server, lead, mosaics):
    project, truth, predicted = mosaics
    log_in(page, live_server, lead.username, PASSWORD)
    page.goto(f"{live_server}/projects/{project.id}/label")
    page.wait_for_selector("#current-image:not([hidden])")
    page.wait_for_selector(".tag-button .tag-prob:not(:empty)")
    assert page.is_visible(".strip .kind-tags")

    # 1. The model's tags start toggled on and marked as suggestions; every tag shows its
    # probability. Correcting one tag takes the suggestion mark off that tag only.
    first, name = current_image(page)
    assert tag_state(page) == {t: (t in predicted[first],) * 2 for t in TAGS}
    probabilities = [p.strip() for p in page.locator(".tag-prob").all_text_contents()]
    assert all(re.fullmatch(r"\d{1,3}\s%", p) for p in probabilities), probabilities
    assert "toggled on for you" in page.text_content("#prediction") or not predicted[first]
    wanted = truth[name]
    toggle_to(page, wanted)
    state = tag_state(page)
    assert [t for t in TAGS if state[t][0]] == wanted
    for tag in TAGS:  # a suggestion the annotator kept (did not touch) stays marked
        assert state[tag][1] == (tag in predicted[first] and tag in wanted)
    expected_text = ", ".join(wanted) if wanted else "none of these"
    assert page.text_content("#tag-set") == f"Enter saves: {expected_text}"
    page.keyboard.press("Enter")
    wait_for_next(page, first)
    answers = {first: wanted}

    # 2. The next image: toggled to its true tags, saved.
    second, name = current_image(page)
    toggle_to(page, truth[name])
    page.keyboard.press("Enter")
    wait_for_next(page, second)
    answers[second] = truth[name]

    # 3. "None of these": every tag off, Enter saves the empty set. (First, for the
    # screenshot, its true tags: the model got one of them wrong.)
    third, name = current_image(page)
    toggle_to(page, truth[name])
    page.mouse.move(0, 0)
    screenshot(page, "labelling-tags")
    toggle_to(page, [])
    assert page.text_content("#tag-set") == "Enter saves: none of these"
    page.keyboard.press("Enter")
    wait_for_next(page, third)
    page.wait_for_function("document.getElementById('save-state').textContent === "
                           "'all labels saved'")
    assert active_answers(project) == {**answers, third: []}

    # 4. Z undoes it: the image comes back with its answer toggled, to be corrected.
    page.keyboard.press("z")
    page.wait_for_function(
        f"document.getElementById('current-image').dataset.imageId === '{third}'")
    assert not any(on for on, _ in tag_state(page).values())
    assert third not in active_answers(project)
    page.keyboard.press(KEY["bag"])
    page.keyboard.press("Enter")
    wait_for_next(page, third)
    answers[third] = ["bag"]

    # 5. S skips: no answer for that image.
    skipped, _ = current_image(page)
    page.keyboard.press("s")
    wait_for_next(page, skipped)
    page.wait_for_function("document.getElementById('save-state').textContent === "
                           "'all labels saved'")
    assert active_answers(project) == answers
    db.session.expire_all()
    tags_now = image_tag_ids(answers)
    names = {c.id: c.name for c in project.classes}
    for image_id, tags in answers.items():
        image = db.session.get(Image, image_id)
        assert image.tagged_at is not None  # an empty set is labelled too
        assert [names[t] for t in tags_now.get(image_id, [])] == tags
    assert db.session.get(Image, skipped).tagged_at is None

    # ← looks back at the last answer; its tags are toggled, a key and Enter change them.
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(
        f"document.getElementById('current-image').dataset.imageId === '{third}'")
    assert page.text_content("#stage-caption").startswith("Earlier tags: bag")
    assert {t for t, (on, _) in tag_state(page).items() if on} == {"bag"}
    page.keyboard.press(KEY["top"])
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('save-state').textContent === "
                           "'all labels saved'")
    assert active_answers(project) == {**answers, third: ["top", "bag"]}
    page.keyboard.press("ArrowRight")
    wait_for_next(page, third)

    # The list of keys names the tag keys, Enter, S and Z.
    page.keyboard.press("?")
    overlay = page.text_content("#keys-overlay")
    assert "none of these" in overlay and "Skip" in overlay and "Undo" in overlay
    page.keyboard.press("Escape")
    assert page.is_hidden("#keys-overlay")


def tags_of(project: Project, image_ids: list[int]) -> dict[int, list[str]]:
    names = {c.id: c.name for c in project.classes}
    db.session.expire_all()
    found = image_tag_ids(image_ids)
    return {i: sorted(names[t] for t in found.get(i, [])) for i in image_ids}


def apply_filters(page, **values: str) -> None:
    for name, value in values.items():
        selector = f".g-filters [name={name}]"
        if page.get_attribute(selector, "type") == "number":
            page.fill(selector, value)
        else:
            page.select_option(selector, value)
    page.click(".g-filters button[type=submit]")
    page.wait_for_load_state()


def shown_ids(page) -> list[int]:
    return [int(i) for i in page.eval_on_selector_all(
        ".g-tile", "(tiles) => tiles.map((t) => t.dataset.imageId)")]


def test_gallery_filters_by_tag_and_changes_tags_in_bulk(page, live_server, lead, mosaics):
    from labeler.annotations import record_tags

    project, truth, predicted = mosaics
    classes = {c.name: c for c in project.classes}
    images = db.session.scalars(select(Image).where(Image.project_id == project.id)
                                .order_by(Image.id)).all()
    for image in images[:6]:  # six labelled with their true tags
        record_tags(image, [classes[t] for t in truth[image.original_name]], lead)
    db.session.commit()
    labelled = {image.id: truth[image.original_name] for image in images[:6]}
    log_in(page, live_server, lead.username, PASSWORD)
    page.goto(f"{live_server}/projects/{project.id}/gallery")
    assert page.is_visible(".g-crumbs .kind-tags")
    assert page.locator(".g-tile").count() == 24
    # Labelled tags are solid badges; an unlabelled image shows its predicted tags with "?".
    first_unlabelled = images[6].id
    caption = page.text_content(f".g-tile[data-image-id='{first_unlabelled}'] .g-caption")
    assert caption == "".join(f"{t}?" for t in predicted[first_unlabelled]) or (
        not predicted[first_unlabelled] and caption == "no tags?")

    apply_filters(page, tag="trouser", tag_state="predicted")
    assert sorted(shown_ids(page)) == sorted(i for i, t in predicted.items() if "trouser" in t)
    apply_filters(page, tag_state="has")
    assert sorted(shown_ids(page)) == sorted(i for i, t in labelled.items() if "trouser" in t)
    apply_filters(page, tag_state="", min_probability="0.3", max_probability="0.65")
    # trouser's probabilities are 0.13 (not predicted) and 0.69 (predicted): none in range.
    assert shown_ids(page) == []
    apply_filters(page, min_probability="0.6", max_probability="")
    assert sorted(shown_ids(page)) == sorted(i for i, t in predicted.items() if "trouser" in t)

    # Add a tag to two unlabelled images that are not predicted to have it.
    page.goto(f"{live_server}/projects/{project.id}/gallery?label=unlabelled&tag=bag"
              "&tag_state=not_predicted")
    chosen = shown_ids(page)[:2]
    for image_id in chosen:
        page.click(f".g-tile[data-image-id='{image_id}'] img")
    page.select_option("#g-tag-select", "bag")
    screenshot(page, "gallery-tags")
    page.click("#g-add-tag")
    page.wait_for_function("document.getElementById('g-status').textContent === "
                           "'Added bag to 2 images.'")
    assert tags_of(project, chosen) == {i: sorted([*predicted[i], "bag"]) for i in chosen}
    assert "bag" in page.text_content(f".g-tile[data-image-id='{chosen[0]}'] .g-caption")
    # ... take it off one of them again, and confirm another's predicted tags as they are.
    page.click(f".g-tile[data-image-id='{chosen[0]}'] img")
    page.click("#g-remove-tag")
    page.wait_for_function("document.getElementById('g-status').textContent === "
                           "'Removed bag from 1 image.'")
    other = shown_ids(page)[2]
    page.click(f".g-tile[data-image-id='{other}'] img")
    page.click("#g-confirm")
    page.wait_for_function("document.getElementById('g-status').textContent"
                           ".startsWith('Confirmed the predicted tags of 1 image')")
    assert tags_of(project, [chosen[0], other]) == {
        chosen[0]: sorted(predicted[chosen[0]]), other: sorted(predicted[other])}
    sources = db.session.scalars(select(Annotation.source).where(
        Annotation.image_id.in_([*chosen, other]))).all()
    assert set(sources) == {"gallery"}



def test_dashboard_shows_per_tag_quality_and_the_f1_map_curve(page, live_server, lead,
                                                              mosaics):
    from labeler.annotations import record_tags
    from labeler.jobs import run_inline
    from labeler.training import run_round

    project, truth, _ = mosaics
    classes = {c.name: c for c in project.classes}
    images = db.session.scalars(select(Image).where(Image.project_id == project.id)
                                .order_by(Image.id)).all()
    for labelled in (12, 18, 24):  # three real rounds, on more labels each time
        for image in images[labelled - 6 if labelled > 12 else 0:labelled]:
            record_tags(image, [classes[t] for t in truth[image.original_name]], lead)
        db.session.commit()
        job = run_inline("retrain", project.id, run_round)
        assert job.status == JobStatus.SUCCEEDED, job.message
    log_in(page, live_server, lead.username, PASSWORD)
    page.goto(f"{live_server}/projects/{project.id}/dashboard")
    page.wait_for_selector("#dashboard[data-loaded=true]")
    assert page.is_visible("h1 .kind-tags")
    rows = page.locator("#per-class tbody tr")
    assert rows.count() == 4
    assert sorted(rows.locator("td:first-child").all_text_contents()) == sorted(TAGS)
    headers = page.locator("#per-class thead th").all_text_contents()
    assert headers[:6] == ["Tag", "Precision", "Recall", "F1", "Average precision",
                           "Threshold"]
    thresholds = rows.locator("td:nth-child(6)").all_text_contents()
    assert all(re.fullmatch(r"0\.\d\d|1\.00", t) for t in thresholds), thresholds
    # The curve: micro F1, macro F1 and mAP of each round that measured them.
    measured = db.session.scalars(select(ModelRound).where(
        ModelRound.project_id == project.id)).all()
    points = sum(1 for r in measured if (r.metrics or {}).get("micro_f1") is not None)
    assert points >= 2
    for series in ("micro_f1", "macro_f1", "map"):
        assert page.locator(f"#curve circle[data-series={series}]").count() == points
    assert re.fullmatch(r"\d\.\d\d", page.text_content("#kpi-cardinality"))
    cardinality = sum(len(t) for t in truth.values()) / len(truth)
    assert float(page.text_content("#kpi-cardinality")) == pytest.approx(cardinality, abs=0.01)
    assert page.is_hidden("#confusion-panel")
    page.mouse.move(0, 0)
    screenshot(page, "dashboard-tags", full_page=True)
