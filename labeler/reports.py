"""What a project's status and progress are: the numbers the CLI, the API and the dashboard
show, each assembled here once.

``project_status`` is a project's status (counts, embeddings, strategy, rounds) for
``labeler project show``, ``GET /projects/<id>/stats`` and the dashboard alike;
``class_counts``, ``learning_curve`` and ``recent_jobs`` are the dashboard's other
queries. Then per-annotator activity for the lead: labels kept and labels per active hour.

Active time comes from the labels' own timestamps. For each annotator, the gaps between
consecutive labelling acts no longer than ``IDLE_CUTOFF_S`` are work; a longer gap is a
pause (lunch, a meeting, the night) and counts for nothing. The first act of each working
session has no gap before it, although looking at that image took time too, so each
session is credited once with the annotator's mean working gap. Altogether::

    active seconds = sum of working gaps × acts / number of working gaps

which is "every act took the annotator's mean working gap": 40 labels given over 42 s
come out at about 42 s, not a five-minute bucket. An annotator with no working gap at all
(every act isolated by pauses) has no measurable time: their rate is unknown (None), not
invented.

Acts are the labels given by hand (the labelling page and the gallery), undone ones
included since undone labels took time as well; labels imported from folders or files
are machine work and are left out. Labels *kept* (not undone) are what the rate counts.

Labels kept are counted over the project's whole history; active time and the rate look
at the last ``RATE_WINDOW`` (7 days). The gaps are computed by the database with a window
function (``LAG``, SQLite ≥ 3.25 and PostgreSQL) over that window's annotations only, found
through the (project, created_at) index, and one row per annotator comes back to Python.
Why a window: ``LAG`` over a whole project of a million annotations takes seconds on SQLite
(it sorts them all), on every dashboard poll, and last week's speed is what a lead asks
about anyway. ``bench/annotator_time.py`` measures both against the old bucket count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.sql.elements import ColumnElement

from .extensions import db
from .learning.stopping import (
    MIN_POINTS,
    accuracy_interval,
    accuracy_rises,
    expected_gain,
    fit_learning_curve,
)
from .models import Annotation, Image, Job, JobStatus, ModelRound, Project, User, rfc3339
from .project_vectors import embedding_counts, project_backbone_name
from .projects import project_counts
from .rounds import latest_round
from .training import labels_until_next_round, project_retrain_every, project_strategy

# --- a project's status ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectStatus:
    """Where a project stands: what ``project show``, the stats and the dashboard report.

    Attributes:
        counts: ``projects.project_counts``: images, labelled, unlabelled, per class name.
        embedded: images with a vector in the project's current embedding space.
        backbone: the backbone the project embeds with.
        strategy: the sampling strategy; retrain_every: labels between automatic rounds.
        labels_until_next_round: how many more labels start a round (0: one is due).
        active_round: the newest round that succeeded (the model in use), if any.
        last_round: the newest round whatever its status, if any.
    """

    counts: dict[str, Any]
    embedded: int
    backbone: str
    strategy: str
    retrain_every: int
    labels_until_next_round: int
    active_round: ModelRound | None
    last_round: ModelRound | None


def project_status(project: Project) -> ProjectStatus:
    """The status of ``project``, assembled once for every place that shows it."""
    return ProjectStatus(
        counts=project_counts(project), embedded=embedding_counts(project)[0],
        backbone=project_backbone_name(project), strategy=project_strategy(project),
        retrain_every=project_retrain_every(project),
        labels_until_next_round=labels_until_next_round(project),
        active_round=latest_round(project),
        last_round=latest_round(project, succeeded_only=False))


def class_counts(project: Project, labelled_per_class: dict[str, int]) -> list[dict[str, Any]]:
    """Labelled and auto-tagged (predicted, not yet labelled) images of each active class."""
    predicted = dict(db.session.execute(
        select(Image.predicted_class_id, func.count())
        .where(Image.project_id == project.id, Image.label_class_id.is_(None),
               Image.predicted_class_id.is_not(None))
        .group_by(Image.predicted_class_id)).all())
    return [{"name": c.name, "colour": c.colour, "labelled": labelled_per_class.get(c.name, 0),
             "predicted": predicted.get(c.id, 0)} for c in project.active_classes()]


def learning_curve(project: Project) -> list[dict[str, Any]]:
    """One point per succeeded round that measured a cross-validated accuracy."""
    rounds = db.session.scalars(
        select(ModelRound).where(ModelRound.project_id == project.id,
                                 ModelRound.status == JobStatus.SUCCEEDED)
        .order_by(ModelRound.number)).all()
    return [{"round": r.number, "n_labels": r.n_labels,
             "accuracy": (r.metrics or {}).get("accuracy"),
             "macro_f1": (r.metrics or {}).get("macro_f1"), "strategy": r.strategy}
            for r in rounds if (r.metrics or {}).get("accuracy") is not None]


#: Labels whose expected gain the stopping hint predicts.
NEXT_LABELS = 100
#: A curve flat at this accuracy or above is a real plateau, not a biased estimate.
SATURATED_ACCURACY = 0.98


def outlook(active_round: ModelRound | None, curve: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The stopping hint: auto-tag accuracy now (95 % interval), and what the next 100
    labels are expected to add (inverse power law over the rounds' accuracies).

    Args:
        active_round: The round in use.
        curve: :func:`learning_curve` of the project.

    Returns:
        None before a round has measured its accuracy; else ``accuracy``, ``low``,
        ``high``, ``n`` (out-of-fold predictions behind it), ``n_labels``,
        ``gain_next_100`` and ``plateau`` (None until :data:`MIN_POINTS` rounds are
        measured), ``rounds`` (points fitted) and ``note`` (a sentence for the lead).
    """
    metrics = (active_round.metrics or {}) if active_round is not None else {}
    accuracy, n = metrics.get("accuracy"), metrics.get("n")
    if accuracy is None or not n:
        return None
    low, high = accuracy_interval(float(accuracy), int(n))
    counts, accuracies = [p["n_labels"] or 0 for p in curve], [p["accuracy"] for p in curve]
    fitted = fit_learning_curve(counts, accuracies)
    if (fitted is not None and not accuracy_rises(counts, accuracies)
            and max(accuracies) < SATURATED_ACCURACY):
        fitted = None  # a falling curve says nothing about what more labels add
        falling = True
    else:
        falling = False
    n_labels = int(active_round.n_labels or n)
    gain = expected_gain(fitted, n_labels, NEXT_LABELS) if fitted is not None else None
    if falling:
        note = ("Cross-validated accuracy has not risen with the last rounds' labels: the "
                "queue serves the hardest images, whose labels pull this estimate down, so "
                "what more labels would add cannot be read from the curve yet.")
    elif gain is None:
        note = (f"The gain of more labels is estimated once {MIN_POINTS} rounds at different "
                "label counts have measured their accuracy.")
    else:
        note = (f"The next {NEXT_LABELS} labels are expected to add about "
                f"{gain * 100:.1f} points of accuracy (the curve levels off near "
                f"{fitted.a:.0%})."
                + (" More labels have stopped paying much." if gain < 0.005 else ""))
    return {"accuracy": float(accuracy), "low": low, "high": high, "n": int(n),
            "n_labels": n_labels, "gain_next_100": gain,
            "plateau": fitted.a if fitted is not None else None, "rounds": len(curve),
            "note": note}


def all_rounds(project: Project) -> list[ModelRound]:
    """Every round of the project, oldest first."""
    return list(db.session.scalars(select(ModelRound).where(ModelRound.project_id == project.id)
                                   .order_by(ModelRound.number)))


def recent_jobs(project: Project, limit: int) -> list[Job]:
    """The project's ``limit`` newest jobs, newest first (older ones stay in the database)."""
    return list(db.session.scalars(select(Job).where(Job.project_id == project.id)
                                   .order_by(Job.id.desc()).limit(limit)))


# --- annotators --------------------------------------------------------------------------------

#: A gap between two labels longer than this is a pause, not labelling work.
IDLE_CUTOFF_S = 300.0
#: Active time and labels per hour look this far back: the lead sees current speed, and
#: the cost follows recent activity, not the project's whole history.
RATE_WINDOW = timedelta(days=7)
#: Annotation sources that are an annotator's own acts (others are imports).
HAND_SOURCES = ("manual", "gallery")


@dataclass(frozen=True)
class Activity:
    """What the timestamps of one annotator's acts say about their working time.

    Attributes:
        acts: labelling acts timed.
        working_gaps: gaps between consecutive acts no longer than the idle cut-off.
        working_seconds: the sum of those gaps.
    """

    acts: int
    working_gaps: int
    working_seconds: float

    @property
    def active_seconds(self) -> float | None:
        """Working time with one mean gap credited per session; None if unmeasurable."""
        if self.working_gaps == 0:
            return None
        return self.working_seconds * self.acts / self.working_gaps


def activity_of(timestamps: Iterable[datetime],
                idle_cutoff_s: float = IDLE_CUTOFF_S) -> Activity:
    """The activity of one annotator from the times of their acts (any order).

    This is the definition the database query follows; tests compare the two.

    Args:
        timestamps: when each act happened.
        idle_cutoff_s: the longest gap still counted as work.

    Returns:
        The number of acts, of working gaps and the seconds they add up to.
    """
    ordered = sorted(timestamps)
    gaps = [(later - earlier).total_seconds()
            for earlier, later in zip(ordered, ordered[1:], strict=False)]
    working = [gap for gap in gaps if gap <= idle_cutoff_s]
    return Activity(len(ordered), len(working), float(sum(working)))


@dataclass(frozen=True)
class AnnotatorReport:
    """One row of the dashboard's Annotators table."""

    username: str
    labels: int  # kept (not undone), given by hand, ever
    last_hour: int
    last_label_at: datetime | None
    recent_labels: int  # kept, in the rate window
    activity: Activity  # in the rate window

    @property
    def per_hour(self) -> float | None:
        """Labels kept per hour of active time in the window (None if unmeasurable)."""
        seconds = self.activity.active_seconds
        if not seconds:
            return None
        return self.recent_labels * 3600 / seconds

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``GET /projects/<id>/dashboard``'s ``annotators`` items."""
        seconds = self.activity.active_seconds
        per_hour = self.per_hour
        return {"username": self.username, "labels": self.labels,
                "last_hour": self.last_hour, "recent_labels": self.recent_labels,
                "per_hour": None if per_hour is None else round(per_hour, 1),
                "active_seconds": None if seconds is None else round(seconds, 1),
                "active_minutes": None if seconds is None else round(seconds / 60, 1),
                "last_label_at": rfc3339(self.last_label_at)}


def _seconds_between(later: Any, earlier: Any) -> ColumnElement[float]:
    """``later - earlier`` in seconds, computed by the database."""
    if db.engine.dialect.name == "sqlite":
        # julianday() reads SQLAlchemy's "YYYY-MM-DD HH:MM:SS.ffffff" to the millisecond,
        # which is all a rate needs.
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return func.extract("epoch", later - earlier)


def _hand_made(project_id: int) -> list[ColumnElement[bool]]:
    """The annotations that are an annotator's own acts in the project."""
    return [Annotation.project_id == project_id, Annotation.annotator_id.is_not(None),
            Annotation.source.in_(HAND_SOURCES)]


def _totals(project_id: int, now: datetime) -> list[Any]:
    """(annotator id, username, labels kept, kept in the last hour, last kept label's time)."""
    kept = Annotation.undone_at.is_(None)
    # Aggregate by annotator id first and join the 20 users after, not the million rows.
    totals = (
        select(Annotation.annotator_id,
               func.sum(case((kept, 1), else_=0)).label("labels"),
               func.sum(case((and_(kept, Annotation.created_at >= now - timedelta(hours=1)),
                              1), else_=0)).label("last_hour"),
               func.max(case((kept, Annotation.created_at))).label("last_at"))
        .where(*_hand_made(project_id))
        .group_by(Annotation.annotator_id)
        .subquery()
    )
    return db.session.execute(
        select(User.id, User.username, totals.c.labels, totals.c.last_hour, totals.c.last_at)
        .join(totals, totals.c.annotator_id == User.id)
        .order_by(totals.c.labels.desc(), User.username)).all()


def _recent_activity(project_id: int, since: datetime,
                     idle_cutoff_s: float) -> dict[int, tuple[int, Activity]]:
    """Per annotator id: labels kept since ``since`` and the activity of their acts since."""
    previous = func.lag(Annotation.created_at).over(
        partition_by=Annotation.annotator_id, order_by=(Annotation.created_at, Annotation.id))
    acts = (
        select(Annotation.annotator_id, Annotation.created_at, Annotation.undone_at,
               previous.label("previous"))
        .where(*_hand_made(project_id), Annotation.created_at >= since)
        .subquery()
    )
    gap = _seconds_between(acts.c.created_at, acts.c.previous)
    working = and_(acts.c.previous.is_not(None), gap <= idle_cutoff_s)
    rows = db.session.execute(
        select(acts.c.annotator_id, func.sum(case((acts.c.undone_at.is_(None), 1), else_=0)),
               func.count(), func.sum(case((working, 1), else_=0)),
               func.sum(case((working, gap), else_=0.0)))
        .group_by(acts.c.annotator_id)).all()
    return {user_id: (int(kept or 0), Activity(int(count), int(gaps or 0), float(seconds or 0)))
            for user_id, kept, count, gaps, seconds in rows}


def annotator_reports(project_id: int, now: datetime, *,
                      window: timedelta = RATE_WINDOW,
                      idle_cutoff_s: float = IDLE_CUTOFF_S) -> list[AnnotatorReport]:
    """Every annotator's labels, recent labels and active time in one project.

    Args:
        project_id: the project.
        now: the clock that "the last hour" and the rate window end at.
        window: how far back active time and the rate look.
        idle_cutoff_s: the longest gap between two acts still counted as work.

    Returns:
        One report per annotator who ever labelled by hand, most labels kept first.
    """
    recent = _recent_activity(project_id, now - window, idle_cutoff_s)
    reports = []
    for user_id, username, labels, last_hour, last_at in _totals(project_id, now):
        recent_labels, activity = recent.get(user_id, (0, Activity(0, 0, 0.0)))
        reports.append(AnnotatorReport(username, int(labels or 0), int(last_hour or 0), last_at,
                                       recent_labels, activity))
    return reports
