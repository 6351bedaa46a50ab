"""Review of annotators' labels: the reviewer's queue, accept or correct, and the figures.

A review is an annotation like any other (source ``review``, by the reviewer), whose
``reviews_id`` names the label it reviewed: accepting gives the same class, correcting
another. So the history keeps who reviewed what and when, undo works on a review as on
any label, and the review's class is the image's current label, the one the next round
trains on.

The queue holds the images whose current label was given by hand (the labelling page or
the gallery) by someone else and has not been reviewed: newest first, the model's
suspected label errors first, or a random sample for an audit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import aliased

from .annotations import record_label
from .errors import Conflict, LabelerError, NotFound
from .extensions import db
from .models import Annotation, Image, LabelClass, Project, User
from .projects import require_active

REVIEW_SOURCE = "review"
#: Labels a reviewer reviews: the ones people gave by hand (not imports, not reviews).
REVIEWED_SOURCES = ("manual", "gallery")
ORDERS = {"newest": "newest labels first",
          "suspected": "the model's suspected label errors first, then the newest",
          "random": "a random sample, for an audit"}
MAX_BATCH = 50


def _current_unreviewed(project: Project, reviewer: User) -> Any:
    """The SELECT of (annotation, image) pairs the reviewer may review."""
    later = aliased(Annotation)
    review = aliased(Annotation)
    return (
        select(Annotation, Image)
        .join(Image, Image.id == Annotation.image_id)
        .where(Annotation.project_id == project.id, Annotation.undone_at.is_(None),
               Annotation.source.in_(REVIEWED_SOURCES),
               Annotation.annotator_id.is_not(None), Annotation.annotator_id != reviewer.id,
               Image.label_class_id == Annotation.label_class_id,
               # the image's current label: no later label stands
               ~exists().where(later.image_id == Annotation.image_id,
                               later.undone_at.is_(None),
                               or_(later.created_at > Annotation.created_at,
                                   and_(later.created_at == Annotation.created_at,
                                        later.id > Annotation.id))),
               ~exists().where(review.reviews_id == Annotation.id,
                               review.undone_at.is_(None))))


def review_queue(project: Project, reviewer: User, order: str = "newest",
                 n: int = 10) -> list[tuple[Annotation, Image]]:
    """The next ``n`` labels for ``reviewer`` to review, in ``order`` (see ORDERS)."""
    if order not in ORDERS:
        raise LabelerError(f"Unknown review order {order!r}; use one of {', '.join(ORDERS)}.")
    query = _current_unreviewed(project, reviewer)
    newest = (Annotation.created_at.desc(), Annotation.id.desc())
    if order == "newest":
        query = query.order_by(*newest)
    elif order == "suspected":
        disagrees = and_(Image.predicted_class_id.is_not(None),
                         Image.predicted_class_id != Annotation.label_class_id)
        query = query.order_by(Image.suspected_error.desc(), disagrees.desc(), *newest)
    else:
        query = query.order_by(func.random())
    return [(a, i) for a, i in db.session.execute(query.limit(max(1, min(n, MAX_BATCH))))]


def submit_review(project: Project, annotation_id: int, reviewer: User,
                  corrected: LabelClass | None = None) -> Annotation:
    """Accept (``corrected`` None) or correct a label: a new annotation by ``reviewer``
    naming the one it reviewed (committed).

    Raises:
        NotFound: no such annotation in this project.
        Conflict: the label is no longer the image's current one, is the reviewer's own,
            or was reviewed already.
    """
    target = db.session.get(Annotation, annotation_id)
    if target is None or target.project_id != project.id:
        raise NotFound(f"There is no annotation {annotation_id} in project {project.name!r}.")
    if target.annotator_id == reviewer.id:
        raise Conflict("That is your own label; another reviewer reviews it.")
    candidates = _current_unreviewed(project, reviewer).where(Annotation.id == annotation_id)
    if db.session.execute(candidates).first() is None:
        raise Conflict("That label was changed, undone or reviewed since the page loaded; "
                       "go on with the next one.")
    label_class = corrected or target.label_class
    if corrected is not None:
        if corrected.project_id != project.id:
            raise NotFound(f"Class {corrected.name!r} is not in project {project.name!r}.")
        require_active([corrected], "correct it to an active class")
    review = record_label(target.image, label_class, reviewer, source=REVIEW_SOURCE)
    review.reviews_id = target.id
    db.session.commit()
    return review


@dataclass(frozen=True)
class ReviewFigures:
    """One annotator's labels as reviewed."""

    username: str
    labels: int  # given by hand, kept (a later review may have replaced them)
    reviewed: int
    accepted: int
    agreement: float | None  # Cohen's kappa with the reviewers, on the reviewed labels

    def as_dict(self) -> dict[str, Any]:
        return {"username": self.username, "labels": self.labels,
                "reviewed": self.reviewed, "accepted": self.accepted,
                "accepted_rate": (round(self.accepted / self.reviewed, 3)
                                  if self.reviewed else None),
                "agreement": None if self.agreement is None else round(self.agreement, 3)}


def cohen_kappa(pairs: list[tuple[int, int]]) -> float | None:
    """Cohen's kappa of (annotator's class, reviewer's class) pairs; None when undefined
    (no pairs, or both always gave one and the same class: chance agreement is total)."""
    if not pairs:
        return None
    total = len(pairs)
    observed = sum(a == b for a, b in pairs) / total
    first: dict[int, int] = {}
    second: dict[int, int] = {}
    for a, b in pairs:
        first[a] = first.get(a, 0) + 1
        second[b] = second.get(b, 0) + 1
    expected = sum(first[c] * second.get(c, 0) for c in first) / total**2
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def review_figures(project: Project) -> list[ReviewFigures]:
    """Per annotator who labelled by hand: labels, reviewed, accepted, agreement."""
    review = aliased(Annotation)
    labels = dict(db.session.execute(
        select(Annotation.annotator_id, func.count())
        .where(Annotation.project_id == project.id, Annotation.undone_at.is_(None),
               Annotation.source.in_(REVIEWED_SOURCES), Annotation.annotator_id.is_not(None))
        .group_by(Annotation.annotator_id)).all())
    pairs: dict[int, list[tuple[int, int]]] = {}
    for annotator_id, given, reviewed_as in db.session.execute(
            select(Annotation.annotator_id, Annotation.label_class_id, review.label_class_id)
            .join(review, review.reviews_id == Annotation.id)
            .where(Annotation.project_id == project.id, review.undone_at.is_(None),
                   Annotation.annotator_id.is_not(None))):
        pairs.setdefault(annotator_id, []).append((given, reviewed_as))
    names = dict(db.session.execute(select(User.id, User.username).where(
        User.id.in_(set(labels) | set(pairs)))).all())
    figures = [ReviewFigures(names[user_id], int(labels.get(user_id, 0)),
                             len(pairs.get(user_id, [])),
                             sum(a == b for a, b in pairs.get(user_id, [])),
                             cohen_kappa(pairs.get(user_id, [])))
               for user_id in names]
    return sorted(figures, key=lambda f: (-f.labels, f.username))
