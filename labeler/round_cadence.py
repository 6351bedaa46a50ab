"""When the next automatic round may start: every N labels, but not more often than every T s.

With one annotator, "a round every N labels" is the right cadence; with eight, N labels come
in seconds and back-to-back rounds would keep a core busy for good, taken from the people
labelling. So an automatic round needs both N new labels (``training.labels_until_next_round``)
and the moment this module computes: at least ``min_round_interval_s`` after the last round
started, and, after a long round, as long again as it took (at most half the time goes to
training). Rounds a lead asks for are never held back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from .errors import LabelerError
from .extensions import db
from .models import ModelRound, Project, utcnow

#: Default T: an automatic round starts at most this often (seconds).
DEFAULT_MIN_ROUND_INTERVAL_S = 30
MAX_MIN_ROUND_INTERVAL_S = 86_400  # a day: beyond that a lead would start rounds by hand
ROUND_PACING_MIN_S = 5.0  # rounds quicker than this never add a pause of their own


def project_min_round_interval_s(project: Project) -> int:
    """T: the least time between the starts of two automatic rounds of ``project``."""
    return int((project.settings or {}).get("min_round_interval_s",
                                            DEFAULT_MIN_ROUND_INTERVAL_S))


def check_min_round_interval(seconds: int) -> int:
    """``seconds`` if it is a valid T, else a LabelerError saying what is."""
    if not 0 <= seconds <= MAX_MIN_ROUND_INTERVAL_S:
        raise LabelerError("The least time between rounds must be between 0 and "
                           f"{MAX_MIN_ROUND_INTERVAL_S:,} seconds.")
    return seconds


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment  # SQLite: naive


def next_round_not_before(project: Project, now: datetime | None = None) -> datetime | None:
    """The earliest moment an automatic round may start, or None if it may start now.

    The later of: the last round's start + T, and (after a round longer than
    ROUND_PACING_MIN_S) its start + twice its duration. Failed rounds count: a round that
    fails every N labels must not run more often either.
    """
    last = db.session.execute(
        select(ModelRound.created_at, ModelRound.duration_s)
        .where(ModelRound.project_id == project.id)
        .order_by(ModelRound.number.desc()).limit(1)).first()
    if last is None:
        return None
    started = _utc(last.created_at)
    resume = started + timedelta(seconds=project_min_round_interval_s(project))
    if last.duration_s is not None and last.duration_s >= ROUND_PACING_MIN_S:
        resume = max(resume, started + timedelta(seconds=2 * last.duration_s))
    return resume if resume > (now or utcnow()) else None


def round_wait_s(project: Project, now: datetime | None = None) -> float:
    """Seconds before the next automatic round may start (0: it may start now)."""
    now = now or utcnow()
    resume = next_round_not_before(project, now)
    return 0.0 if resume is None else (resume - now).total_seconds()
