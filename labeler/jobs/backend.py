"""What runs submitted jobs: the app's job backend, and the shape every backend has."""

from __future__ import annotations

from typing import Any, Protocol

from flask import Flask

from ..models import Job
from .execute import JobFunction


class JobBackend(Protocol):
    """What runs submitted jobs: ``threads.JobRunner``, or ``rq.backend.RqBackend``."""

    def submit(self, kind: str, project_id: int | None, func: JobFunction,
               **kwargs: Any) -> Job:
        """Create the Job row and queue the work (JobAlreadyRunning if one is active)."""
        ...


def runner(app: Flask) -> JobBackend:
    """The app's job backend (chosen by ``labeler.jobs.init_app``)."""
    return app.extensions["labeler.jobs"]
