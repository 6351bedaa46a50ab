"""The app's cache: what a server process keeps in memory between requests, in one place.

One ``AppCache`` per app (``app.extensions["labeler.cache"]``, reached with
``app_cache()``), thread-safe, each region bounded (least recently used entries go first).
What it holds, and each entry's key:

- ``HEADS``: a round's fitted head, keyed by project, round number and the head file's
  identity (inode, mtime, size);
- ``ID_INDEX``: the sorted image ids of a vector file, keyed by project, ids file, rows
  and the file's identity (inode, mtime);
- ``LABELLED_INDEX``: the labelled images' unit vectors for "nearest labelled images",
  keyed by project, embedding space and vector rows (rebuilt at most every 5 s);
- ``ROUND_STRATEGY``: (strategy, trained) of a finished round, keyed by project and round;
- ``PACING``: when the wait before the next automatic round ends, keyed by project and T.

Invalidation happens through the keys: they carry the versions of what an entry was
built from (a round's number and its file's identity; the vector file's row count and
identity), so a new round, appended vectors or a replaced file never meet a stale entry,
and the old one simply ages out. Labels given since the labelled-neighbour index was
built are added to it at query time (``labeler.explain``), so it is never stale either.
``invalidate_project`` drops everything of one project at once (a restore uses it, since
a failed restore can leave ids that a later project reuses).

Not in here, on purpose: loaded backbones (``embeddings.registry.shared_backbone``: shared
by every app of a process, they are immutable weights, not app data) and the BLAS
controller (``learning.blas``: a fact about the process).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, current_app

T = TypeVar("T")


@dataclass(frozen=True)
class Region:
    """A kind of entry, and how many of them the cache keeps."""

    name: str
    max_entries: int


# A head is small (10 x 1280 floats); a few rounds of a few projects are served at once.
HEADS = Region("heads", 16)
# 8 bytes per vector row twice (order and sorted ids): 16 MB at 1,000,000 rows.
ID_INDEX = Region("id_index", 8)
# Labelled vectors in float32: 50 MB for 10,000 labels at 1280 dimensions.
LABELLED_INDEX = Region("labelled_index", 8)
ROUND_STRATEGY = Region("round_strategy", 4096)
PACING = Region("pacing", 4096)
REGIONS = (HEADS, ID_INDEX, LABELLED_INDEX, ROUND_STRATEGY, PACING)


class AppCache:
    """Bounded, thread-safe regions of ``key -> value``; every key starts with a project id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Region, OrderedDict[tuple[Hashable, ...], Any]] = {
            region: OrderedDict() for region in REGIONS}
        self._build_locks: dict[str, threading.Lock] = {}

    def get(self, region: Region, key: tuple[Hashable, ...]) -> Any | None:
        """The entry under ``key``, or None."""
        with self._lock:
            entries = self._entries[region]
            if key not in entries:
                return None
            entries.move_to_end(key)
            return entries[key]

    def put(self, region: Region, key: tuple[Hashable, ...], value: Any, *,
            replacing: Callable[[tuple[Hashable, ...]], bool] | None = None) -> None:
        """Keep ``value`` under ``key``; first drop the entries ``replacing`` picks out (an
        older version of the same thing), then the least recently used beyond the bound."""
        with self._lock:
            entries = self._entries[region]
            if replacing is not None:
                for old in [k for k in entries if k != key and replacing(k)]:
                    del entries[old]
            entries[key] = value
            entries.move_to_end(key)
            while len(entries) > region.max_entries:
                entries.popitem(last=False)

    def get_or_build(self, region: Region, key: tuple[Hashable, ...],
                     build: Callable[[], T]) -> T:
        """The entry under ``key``, built (outside the lock) and kept if missing.

        Two threads may build the same entry at once; both get a correct value and one is
        kept, which is cheaper than making every reader wait for one builder.
        """
        found = self.get(region, key)
        if found is not None:
            return found
        value = build()
        self.put(region, key, value)
        return value

    def build_lock(self, name: str) -> threading.Lock:
        """A lock of this app's, for builds that only one thread should run at a time."""
        with self._lock:
            return self._build_locks.setdefault(name, threading.Lock())

    def invalidate_project(self, project_id: int) -> None:
        """Drop every entry of project ``project_id``."""
        with self._lock:
            for entries in self._entries.values():
                for key in [k for k in entries if k[0] == project_id]:
                    del entries[key]

    def __len__(self) -> int:
        with self._lock:
            return sum(len(entries) for entries in self._entries.values())


def init_app(app: Flask) -> None:
    """Give the app its cache."""
    app.extensions["labeler.cache"] = AppCache()


def app_cache(app: Flask | None = None) -> AppCache:
    """The cache of ``app`` (default: the current app)."""
    return (app or current_app).extensions["labeler.cache"]
