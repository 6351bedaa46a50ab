"""Annotator active time from the labels' own timestamps, on a fixed clock.

Every timestamp here is written explicitly, so the expected times do not depend on when the
test runs or how fast the machine is.
"""

from __future__ import annotations

import random
from datetime import UTC, timedelta

import pytest

from labeler.reports import IDLE_CUTOFF_S, Activity, activity_of, annotator_reports
from labeler.users import create_user
from tests.builders import NOW, add_acts, at, forty_in_42_seconds, server_now

# --- the definition, on hand-made timestamps ------------------------------------------------

def test_forty_labels_in_42_seconds_take_about_42_seconds():
    activity = activity_of(forty_in_42_seconds())
    assert activity == Activity(acts=40, working_gaps=39, working_seconds=pytest.approx(40.95))
    assert activity.active_seconds == pytest.approx(42.0)


def test_a_long_pause_counts_for_nothing():
    morning = [at(10 * i) for i in range(10)]  # 10 labels, 10 s apart: 90 s of gaps
    afternoon = [at(3 * 3600 + 20 * i) for i in range(5)]  # after 3 h: 5 labels, 20 s apart
    activity = activity_of(afternoon + morning)  # any order
    assert activity == Activity(acts=15, working_gaps=13, working_seconds=170.0)
    # Each of the two sessions is credited once with the mean working gap (170 / 13 s).
    assert activity.active_seconds == pytest.approx(170 + 2 * 170 / 13)


def test_a_gap_at_the_cut_off_is_work_and_one_past_it_a_pause():
    assert activity_of([at(0), at(IDLE_CUTOFF_S)]).working_gaps == 1
    assert activity_of([at(0), at(IDLE_CUTOFF_S + 1)]).working_gaps == 0
    assert activity_of([at(0), at(60)], idle_cutoff_s=30).working_gaps == 0


def test_time_is_unknown_without_two_labels_close_together():
    assert activity_of([]).active_seconds is None
    assert activity_of([at(0)]).active_seconds is None
    assert activity_of([at(0), at(3600), at(7200)]).active_seconds is None


# --- the database query ------------------------------------------------------------------

def by_name(reports):
    return {report.username: report for report in reports}


def test_the_database_measures_forty_labels_in_42_seconds(project):
    ann = create_user("ann", "password-123")
    add_acts(project, ann, forty_in_42_seconds())

    (report,) = annotator_reports(project.id, NOW)
    assert report.username == "ann" and report.labels == report.recent_labels == 40
    assert report.activity.active_seconds == pytest.approx(42.0, abs=0.01)
    assert report.per_hour == pytest.approx(40 * 3600 / 42, rel=1e-3)  # about 3,429, not 34
    assert report.last_hour == 0  # all two hours before NOW
    assert report.last_label_at.replace(tzinfo=UTC) == at(42.0)


def test_two_annotators_and_a_long_pause(project):
    ann, bob = create_user("ann", "password-123"), create_user("bob", "password-123")
    # Ann: 40 labels in 42 s, a 3-hour pause, then 20 labels 6 s apart in NOW's last hour.
    ann_times = forty_in_42_seconds() + [at(3 * 3600 + 6 * i) for i in range(20)]
    # Bob labels at the same time as Ann, interleaved: 30 labels 2 s apart, one undone.
    bob_times = [at(0.5 + 2 * i) for i in range(30)]
    add_acts(project, ann, ann_times)
    add_acts(project, bob, bob_times, undone={7})

    reports = by_name(annotator_reports(project.id, NOW))
    assert list(reports) == ["ann", "bob"]  # most labels first
    ann_report, bob_report = reports["ann"], reports["bob"]
    assert ann_report.activity.working_gaps == 58 and ann_report.last_hour == 20
    # 40.95 s + 114 s of gaps over 58 gaps, credited for 60 acts: about 160 s, not 3 hours.
    assert ann_report.activity.active_seconds == pytest.approx(154.95 * 60 / 58, abs=0.01)
    # The undone label took time (counted in the activity) but is not a label kept.
    assert bob_report.labels == 29 and bob_report.activity.acts == 30
    assert bob_report.activity.active_seconds == pytest.approx(60.0, abs=0.01)
    assert bob_report.per_hour == pytest.approx(29 * 60, abs=1)


def test_imported_labels_are_not_an_annotators_work(project):
    lead = create_user("lena", "password-123", "lead")
    add_acts(project, lead, [at(0)] * 24, source="folder")  # a zip labelled by folders
    add_acts(project, lead, [at(100), at(104), at(108)], source="gallery")

    (report,) = annotator_reports(project.id, NOW)
    assert report.labels == 3 and report.activity.working_gaps == 2
    assert report.activity.working_seconds == pytest.approx(8.0, abs=0.01)


def test_the_query_agrees_with_the_definition_on_random_sessions(project):
    rng = random.Random(12)
    users = [create_user(f"user{i}", "password-123") for i in range(3)]
    expected = {}
    for user in users:
        times, clock = [], 0.0
        for _ in range(rng.randint(5, 60)):
            clock += rng.choice([rng.uniform(0.2, 20), rng.uniform(0.2, 20),
                                 rng.uniform(200, 400), rng.uniform(600, 40_000)])
            times.append(at(clock))
        add_acts(project, user, times)
        expected[user.username] = activity_of(times)

    reports = by_name(annotator_reports(project.id, NOW))
    for username, activity in expected.items():
        measured = reports[username].activity
        assert (measured.acts, measured.working_gaps) == (activity.acts, activity.working_gaps)
        assert measured.working_seconds == pytest.approx(activity.working_seconds, abs=0.01)


def test_labels_older_than_the_window_count_but_not_in_the_rate(project):
    ann = create_user("ann", "password-123")
    add_acts(project, ann, [at(-9 * 86_400 + 5 * i) for i in range(10)])  # 9 days before
    add_acts(project, ann, forty_in_42_seconds())

    (report,) = annotator_reports(project.id, NOW)
    assert report.labels == 50 and report.recent_labels == 40
    assert report.activity.acts == 40
    assert report.activity.active_seconds == pytest.approx(42.0, abs=0.01)
    (old_only,) = annotator_reports(project.id, NOW + timedelta(days=8))
    assert old_only.labels == 50 and old_only.recent_labels == 0
    assert old_only.per_hour is None and old_only.as_dict()["active_seconds"] is None


def test_the_dashboard_reports_seconds_not_five_minute_buckets(lead_client, project):
    add_acts(project, create_user("ann", "password-123"),
             forty_in_42_seconds(now=server_now()))

    data = lead_client.get(f"/api/v1/projects/{project.id}/dashboard").json
    (stats,) = data["annotators"]
    assert stats["labels"] == 40 and stats["active_seconds"] == pytest.approx(42.0, abs=0.1)
    assert stats["active_minutes"] == 0.7 and stats["per_hour"] == pytest.approx(3428.6, abs=1)
