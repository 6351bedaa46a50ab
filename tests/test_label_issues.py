"""Suspected label errors and per-class label quality by cleanlab, on arrays and in a round."""

from __future__ import annotations

import numpy as np
import pytest
from cleanlab.filter import find_label_issues as cleanlab_find_label_issues
from sklearn.datasets import make_blobs

from labeler.learning.heads import LogisticHead
from labeler.learning.label_issues import (
    DEFAULT_FILTER,
    FILTERS,
    RANKINGS,
    ClassLabelQuality,
    SuspectedError,
    find_label_issues,
    label_health,
)
from labeler.learning.label_quality import cross_validated_proba

# Columns in a non-sorted order: ``classes`` says which is which.
CLASSES = np.array(["c", "a", "b"])
PROBA = np.array(
    [
        [0.10, 0.85, 0.05],  # labelled c, but as sure of a as a's own items are
        [0.05, 0.05, 0.90],  # labelled c, but surely b
        [0.85, 0.10, 0.05],  # c
        [0.90, 0.05, 0.05],  # c
        [0.80, 0.10, 0.10],  # c
        [0.05, 0.90, 0.05],  # a
        [0.10, 0.80, 0.10],  # a
        [0.05, 0.85, 0.10],  # a
        [0.05, 0.05, 0.90],  # b
        [0.10, 0.10, 0.80],  # b
        [0.30, 0.10, 0.60],  # b
    ]
)
GIVEN = np.array(["c", "c", "c", "c", "c", "a", "a", "a", "b", "b", "b"])


def test_mislabelled_items_come_first_with_the_other_class_suggested() -> None:
    errors = find_label_issues(PROBA, GIVEN, CLASSES)
    # Ranked by self-confidence: item 1 (0.05 for its label c) before item 0 (0.10).
    assert errors == [
        SuspectedError(1, "c", 0.05, "b", 0.90),
        SuspectedError(0, "c", 0.10, "a", 0.85),
    ]
    assert type(errors[0].given_label) is str and type(errors[0].index) is int
    assert all(type(e.given_probability) is float for e in errors)


@pytest.mark.parametrize("filter_by", FILTERS)
@pytest.mark.parametrize("rank_by", RANKINGS)
def test_the_result_is_cleanlabs_own(filter_by: str, rank_by: str) -> None:
    rng = np.random.default_rng(7)
    proba = rng.dirichlet(np.full(4, 0.4), size=120)
    given = rng.integers(0, 4, size=120)
    classes = np.array([10, 20, 30, 40])
    expected = cleanlab_find_label_issues(
        given, proba, filter_by=filter_by, return_indices_ranked_by=rank_by, n_jobs=1
    )
    errors = find_label_issues(proba, classes[given], classes, filter_by=filter_by,
                               rank_by=rank_by)
    assert [e.index for e in errors] == expected.tolist()
    assert len(errors) > 0
    for e in errors:
        assert e.given_label == classes[given[e.index]]
        others = [(p, c) for p, c in zip(proba[e.index], classes, strict=True)
                  if c != e.given_label]
        best_probability, best_label = max(others)
        assert e.suggested_label == best_label
        assert e.suggested_probability == pytest.approx(best_probability)


def test_a_flipped_label_among_blobs_is_the_first_suspect() -> None:
    X, y = make_blobs(200, n_features=16, centers=4, cluster_std=1.0, random_state=3)
    truth = np.array(["cat", "dog", "fox", "owl"])[y]
    noisy = truth.copy()
    noisy[17] = "owl" if truth[17] != "owl" else "cat"
    proba, classes = cross_validated_proba(LogisticHead, X.astype(np.float16), noisy, rng=0)
    errors = find_label_issues(proba, noisy, classes)
    assert (errors[0].index, errors[0].given_label, errors[0].suggested_label) == (
        17, noisy[17], truth[17])
    assert len(errors) <= 3
    health = label_health(proba, noisy, classes)
    assert health.per_class[0].label == noisy[17]  # the class with the wrong label is worst
    assert health.per_class[0].label_issues >= 1


def test_too_few_classes_to_judge() -> None:
    assert find_label_issues(np.empty((0, 2)), np.array([]), np.array(["a", "b"])) == []
    one_class = np.array([[0.2, 0.8], [0.9, 0.1]])
    assert find_label_issues(one_class, np.array(["a", "a"]), np.array(["a", "b"])) == []
    health = label_health(one_class, np.array(["a", "a"]), np.array(["a", "b"]))
    assert health.overall == 1.0
    assert [(q.label, q.given, q.quality) for q in health.per_class] == [("a", 2, 1.0),
                                                                        ("b", 0, 1.0)]


def test_the_default_is_the_benchmarked_filter() -> None:
    # bench/label_issues.py: low_self_confidence had the best precision and recall.
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.full(3, 0.5), size=90)
    given = rng.integers(0, 3, size=90)
    chosen = cleanlab_find_label_issues(given, proba, filter_by="low_self_confidence",
                                        return_indices_ranked_by="self_confidence", n_jobs=1)
    assert [e.index for e in find_label_issues(proba, given, np.arange(3))] == chosen.tolist()
    for other in set(FILTERS) - {"low_self_confidence"}:  # each flags other items here
        flagged = find_label_issues(proba, given, np.arange(3), filter_by=other)
        assert [e.index for e in flagged] != chosen.tolist()


def test_bad_inputs_are_explained() -> None:
    with pytest.raises(ValueError, match="Unknown filter 'best'"):
        find_label_issues(PROBA, GIVEN, CLASSES, filter_by="best")
    with pytest.raises(ValueError, match="Unknown ranking"):
        find_label_issues(PROBA, GIVEN, CLASSES, rank_by="loss")
    with pytest.raises(ValueError, match="not among the classes"):
        find_label_issues(PROBA, np.append(GIVEN[:-1], "z"), CLASSES)
    with pytest.raises(ValueError, match="expected \\(10, 3\\)"):
        label_health(PROBA, GIVEN[:10], CLASSES)
    assert DEFAULT_FILTER in FILTERS


def test_label_health_per_class_worst_first() -> None:
    health = label_health(PROBA, GIVEN, CLASSES)
    # Two of c's five labels look like other classes; a and b are clean (ties: column order).
    assert health.per_class == [
        ClassLabelQuality("c", 5, 2, pytest.approx(0.4), 0.0, pytest.approx(0.6)),
        ClassLabelQuality("a", 3, 0, 0.0, pytest.approx(0.25), 1.0),
        ClassLabelQuality("b", 3, 0, 0.0, pytest.approx(0.25), 1.0),
    ]
    assert health.overall == pytest.approx(9 / 11)
    assert type(health.overall) is float and type(health.per_class[0].given) is int


# --- through a round ---------------------------------------------------------------------------


def test_a_round_flags_wrong_labels_first_for_review_and_scores_each_class(
        app, tmp_path, lead_client, alice):
    from sqlalchemy import select

    from labeler.extensions import db
    from labeler.jobs import run_inline
    from labeler.models import Image, JobStatus
    from labeler.rounds import latest_round
    from labeler.training import run_round
    from tests.builders import embedded_colour_project, images, label, true_colour

    project = embedded_colour_project(tmp_path / "in", per_colour=20, seed_step=7)
    pool = images(project)
    wrong = [i for i in pool if true_colour(i) == "red"][:2]
    for image in pool:
        label(project, image, alice, "blue" if image in wrong else None)

    job = run_inline("retrain", project.id, run_round)

    assert job.status == JobStatus.SUCCEEDED, job.message
    metrics = latest_round(project).metrics
    # The two planted errors lead the review list, with the true colour suggested.
    first = metrics["suspected_errors"][:2]
    assert {e["image_id"] for e in first} == {i.id for i in wrong}
    assert {(e["given"], e["suggested"]) for e in first} == {("blue", "red")}
    flagged = set(db.session.scalars(select(Image.id).where(Image.suspected_error.is_(True))))
    assert {i.id for i in wrong} <= flagged and len(flagged) <= 4
    # The gallery's "suspected errors" filter serves what the round flagged.
    page = lead_client.get(f"/api/v1/projects/{project.id}/images?suspected=1").json
    assert {item["image_id"] for item in page["items"]} == flagged
    # Label quality per class, from cleanlab: blue holds the wrong labels, red lost them.
    quality = metrics["label_quality"]
    assert set(quality["per_class"]) == {"red", "green", "blue"}
    blue, green = quality["per_class"]["blue"], quality["per_class"]["green"]
    assert blue["label_issues"] >= 2 and blue["given"] == 22
    assert blue["quality"] < green["quality"] == 1.0
    assert quality["per_class"]["red"]["inverse_label_noise"] > 0
    assert 0.9 < quality["overall"] < 1.0
    # The dashboard carries it to the page.
    dashboard = lead_client.get(f"/api/v1/projects/{project.id}/dashboard").json
    assert dashboard["latest_round"]["label_quality"] == quality
