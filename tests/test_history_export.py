"""The audit trail: every label, relabel, undo and bulk label keeps who and when, and
`labeler export --format jsonl --history` gives each image's whole history."""

from __future__ import annotations

import json
from datetime import datetime

from labeler.gallery import bulk_label
from labeler.projects import class_by_name
from labeler.queue import undo
from labeler.review import submit_review
from tests.builders import images, label


def export(runner, tmp_path, *extra: str) -> dict[str, dict]:
    out = tmp_path / "history.jsonl"
    result = runner.invoke(args=["export", "colours", "--format", "jsonl", "--history",
                                 "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return {line["file_name"]: line for line in lines}


def test_history_names_who_did_what_when_and_what_was_undone(runner, tmp_path, project,
                                                             annotator, lead):
    first, second, third, untouched = images(project)[:4]
    label(project, first, annotator, "red")
    relabel = label(project, first, annotator, "blue")
    undo(relabel.id, lead)  # a lead undoes the annotator's relabel
    bulk_label(project, [second.id, third.id], lead, label="green")
    label(project, untouched, annotator, "red")
    undo(label(project, untouched, annotator, "red").id, annotator)  # its second label only
    given = label(project, images(project)[4], annotator, "red")
    submit_review(project, given.id, lead, class_by_name(project, "blue"))

    lines = export(runner, tmp_path)
    one = lines[first.original_name]
    assert one["label"] == "red" and one["annotator"] == "arno"
    acts = [(a["label"], a["annotator"], a["source"], a["undone"], a["undone_by"])
            for a in one["history"]]
    assert acts == [("red", "arno", "manual", False, None),
                    ("blue", "arno", "manual", True, "lena")]
    times = [datetime.fromisoformat(a["at"]) for a in one["history"]]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    assert datetime.fromisoformat(one["history"][1]["undone_at"]) >= times[1]
    assert one["labelled_at"] == one["history"][0]["at"]  # the current label's act
    for bulk in (second, third):
        assert [(a["label"], a["annotator"], a["source"]) for a in
                lines[bulk.original_name]["history"]] == [("green", "lena", "gallery")]
    assert [a["undone_by"] for a in lines[untouched.original_name]["history"]] == [None,
                                                                                    "arno"]
    reviewed = lines[images(project)[4].original_name]
    assert reviewed["label"] == "blue"
    assert [(a["label"], a["annotator"], a["source"], a["reviews"]) for a in
            reviewed["history"]] == [("red", "arno", "manual", None),
                                     ("blue", "lena", "review", given.id)]
    assert len(lines) == 5  # labelled images only, as without --history

    with_unlabelled = export(runner, tmp_path, "--include-predictions")
    assert len(with_unlabelled) == len(images(project))
    never = next(line for line in with_unlabelled.values() if line["label"] is None)
    assert never["history"] == []


def test_history_is_for_json_lines_only(runner, tmp_path, project):
    result = runner.invoke(args=["export", "colours", "--format", "csv", "--history",
                                 "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and "--format jsonl" in result.output
