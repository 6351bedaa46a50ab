"""Concurrent annotators against a real ``labeler serve``: the three things that must be zero.

The short version of ``bench/load.py``: a few annotators label through the REST API as
fast as the server answers while a lead triggers a retrain half-way; then the database
is checked. Throughput and latency are the benchmark's business, not this test's.
"""

from __future__ import annotations

from tests.loadgen import prepare_project, run_load, true_label_from_name, true_tags_from_name
from tests.serverproc import ServerProcess


def test_concurrent_annotators_get_no_5xx_no_double_handout_and_lose_no_label(tmp_path):
    home = tmp_path / "home"
    prepared = prepare_project(home, n_images=600, n_annotators=6)

    with ServerProcess(home, fake_backbone=False) as server:
        result = run_load(server.url, prepared.database_url, prepared.project_id,
                          prepared.annotator_tokens, prepared.lead_token,
                          true_label_from_name, duration_s=8.0)

    report = "\n".join(result.lines()) + f"\n{server.log()[-2000:]}"
    assert result.labels > 20, report  # the run really labelled, concurrently
    assert result.client_errors == [], report
    assert result.server_errors == 0, report
    assert result.double_handouts == 0, report
    assert result.lost_labels == 0, report
    assert not result.retrain_status.startswith("refused 5"), report


def test_concurrent_taggers_of_a_multi_label_project_lose_no_tag_set(tmp_path):
    """The same three zeros when annotators send tag sets (0, 1 or 2 tags each)."""
    home = tmp_path / "home"
    prepared = prepare_project(home, n_images=400, n_annotators=4, multi_label=True)

    with ServerProcess(home, fake_backbone=False) as server:
        result = run_load(server.url, prepared.database_url, prepared.project_id,
                          prepared.annotator_tokens, prepared.lead_token,
                          true_tags_from_name, duration_s=6.0)

    report = "\n".join(result.lines()) + f"\n{server.log()[-2000:]}"
    assert result.labels > 20, report
    assert result.client_errors == [], report
    assert result.server_errors == 0, report
    assert result.double_handouts == 0, report
    assert result.lost_labels == 0, report
    assert not result.retrain_status.startswith("refused 5"), report
