"""The app's cache: bounded regions, versioned keys, one cache per app."""

from __future__ import annotations

import numpy as np

from labeler.cache import HEADS, ID_INDEX, PACING, AppCache, app_cache
from labeler.jobs import run_inline
from labeler.queue import lease_next
from labeler.rounds import latest_round, load_head
from labeler.training import run_round
from tests.builders import label, trained


def test_a_region_keeps_its_bound_and_drops_the_least_recently_used_first():
    cache = AppCache()
    for number in range(HEADS.max_entries):
        cache.put(HEADS, (1, number), f"head {number}")
    assert cache.get(HEADS, (1, 0)) == "head 0"  # now the most recently used
    cache.put(HEADS, (1, "one more"), "head")

    assert len(cache) == HEADS.max_entries
    assert cache.get(HEADS, (1, 1)) is None  # the least recently used went
    assert cache.get(HEADS, (1, 0)) == "head 0"


def test_an_entry_can_replace_its_older_versions():
    cache = AppCache()
    cache.put(ID_INDEX, (1, "space", 100), "old rows")
    cache.put(ID_INDEX, (2, "space", 100), "another project")
    cache.put(ID_INDEX, (1, "space", 120), "new rows", replacing=lambda k: k[:2] == (1, "space"))

    assert cache.get(ID_INDEX, (1, "space", 100)) is None
    assert cache.get(ID_INDEX, (1, "space", 120)) == "new rows"
    assert cache.get(ID_INDEX, (2, "space", 100)) == "another project"


def test_invalidating_a_project_drops_its_entries_only():
    cache = AppCache()
    cache.put(HEADS, (7, 1, 11, 22, 33), "head of 7")
    cache.put(PACING, (7,), 123.0)
    cache.put(PACING, (8,), 456.0)

    cache.invalidate_project(7)

    assert len(cache) == 1 and cache.get(PACING, (8,)) == 456.0


def test_a_new_round_is_served_its_own_head(app, project, alice):
    trained(project, alice)
    first = load_head(project)
    assert load_head(project) is first  # cached: the next request does not read the file
    label(project, lease_next(project, alice, n=1)[0], alice)
    run_inline("retrain", project.id, run_round)

    second = load_head(project)
    assert latest_round(project).number == 3 and second is not first
    assert not np.array_equal(second.coef_, first.coef_)


def test_each_app_has_its_own_cache(app, tmp_path):
    from labeler import create_app

    other = create_app({"HOME": tmp_path / "other"})
    app_cache().put(PACING, (1,), 99.0)

    assert app_cache(other) is not app_cache() and app_cache(other).get(PACING, (1,)) is None
