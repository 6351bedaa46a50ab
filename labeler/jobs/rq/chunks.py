"""An embed job split into chunks that several workers share, under one Job row.

``plan_embedding`` (one RQ job) lists the images without vectors and writes a JobChunk
row per ``CHUNK_SIZE`` of them, each enqueued as its own RQ job. ``embed_chunk`` embeds
the images of its chunk that still lack a vector (so a chunk run again after its worker
died redoes only what was lost; vectors are append-only and the last row wins, so even a
duplicate run corrupts nothing), records its absolute ``done`` count and sets the Job's
progress to the sum. The chunk that finds every chunk finished marks the Job succeeded,
in one conditional UPDATE that exactly one chunk can win, and queues the follow-up round.
"""

from __future__ import annotations

import time

from sqlalchemy import exists, func, select, update

from ...errors import LabelerError
from ...extensions import db
from ...models import Image, Job, JobChunk, JobStatus, Project, utcnow
from ...project_vectors import (
    embed_images,
    embedded_summary,
    images_missing_vectors,
    prepare_embedding,
)
from ...vectors import EmbeddingSpace
from ..backend import runner
from ..map_layouts import submit_map_layout
from ..rows import (
    PROGRESS_INTERVAL_S,
    JobAlreadyRunning,
    current_owner,
    mark_interrupted,
)
from ..triggers import submit_retrain
from .backend import queue_name
from .entry import job_context, worker_app

CHUNK_SIZE = 1000  # images per chunk: a few minutes of TensorFlow on one CPU worker


def plan_embedding(job_id: int, then_round: bool) -> str:
    """RQ job: split the embed Job ``job_id`` into chunks and enqueue them."""
    with job_context():
        job = db.session.get(Job, job_id)
        if job is None or not job.is_active:
            return f"skipped: job {job_id} is no longer active"
        job.status, job.started_at, job.heartbeat_at = JobStatus.RUNNING, utcnow(), utcnow()
        project = db.session.get(Project, job.project_id)
        if project is None:
            return _fail(job, f"Project {job.project_id} no longer exists.")
        try:
            backbone, store = prepare_embedding(project)
        except LabelerError as exc:
            return _fail(job, str(exc))
        chunks = db.session.scalars(select(JobChunk).where(
            JobChunk.job_id == job_id, JobChunk.status != JobStatus.SUCCEEDED)).all()
        if not chunks:  # not a rerun of a plan that already wrote its chunks
            missing = [row[0] for row in images_missing_vectors(project, store)]
            if not missing:
                job.status, job.progress, job.finished_at = JobStatus.SUCCEEDED, 1.0, utcnow()
                job.message = (f"All {len(store.image_ids())} images already embedded "
                               f"({store.space.key}).")
                db.session.commit()
                return job.message
            chunks = [JobChunk(job_id=job_id, number=n, image_ids=missing[s:s + CHUNK_SIZE],
                               size=len(missing[s:s + CHUNK_SIZE]), done=0, unreadable=0,
                               status=JobStatus.QUEUED, attempts=0, owner="")
                      for n, s in enumerate(range(0, len(missing), CHUNK_SIZE))]
            db.session.add_all(chunks)
            job.message = (f"Embedding {len(missing)} images with {store.space.backbone} in "
                           f"{len(chunks)} chunks")
        db.session.commit()
        backend = runner(worker_app())
        for chunk in chunks:
            backend.enqueue(queue_name(job.kind), "labeler.jobs.rq.chunks.embed_chunk",  # type: ignore[attr-defined]
                            (chunk.id, then_round),
                            {"labeler_job_id": job_id, "labeler_chunk_id": chunk.id})
        return job.message


def embed_chunk(chunk_id: int, then_round: bool) -> str:
    """RQ job: embed one chunk's images that lack a vector; finish the Job if it is last."""
    with job_context():
        chunk = db.session.get(JobChunk, chunk_id)
        job = db.session.get(Job, chunk.job_id) if chunk is not None else None
        if chunk is None or job is None or not job.is_active:
            return f"skipped: chunk {chunk_id}'s job is no longer active"
        if chunk.status == JobStatus.SUCCEEDED:
            return f"skipped: chunk {chunk_id} already done"
        chunk.status, chunk.started_at, chunk.owner = JobStatus.RUNNING, utcnow(), current_owner()
        chunk.attempts += 1
        db.session.commit()
        job_id = job.id
        project = db.session.get(Project, job.project_id)
        if project is None:
            return _fail(job, f"Project {job.project_id} no longer exists.")
        try:
            backbone, store = prepare_embedding(project)
        except LabelerError as exc:  # no backbone here: running it again would not help
            return _fail(job, str(exc))
        have = set(store.image_ids().tolist())
        todo = [i for i in chunk.image_ids if i not in have]
        rows = [tuple(r) for r in db.session.execute(
            select(Image.id, Image.sha256, Image.format)
            .where(Image.id.in_(todo), Image.project_id == project.id).order_by(Image.id))]
        skipped = chunk.size - len(rows)  # embedded already, or deleted since the plan
        last_write = 0.0

        def report(done: int) -> None:
            nonlocal last_write
            if time.monotonic() - last_write >= PROGRESS_INTERVAL_S:
                last_write = time.monotonic()
                _record_progress(chunk_id, job_id, skipped + done)

        failures = embed_images(backbone, store, rows, report)  # type: ignore[arg-type]
        db.session.execute(update(JobChunk).where(JobChunk.id == chunk_id).values(
            status=JobStatus.SUCCEEDED, done=chunk.size, unreadable=len(failures),
            finished_at=utcnow()))
        db.session.commit()
        _record_progress(chunk_id, job_id, chunk.size)
        if _finish_if_last(job_id, store.space) and then_round:
            _queue_round(project)
        return f"chunk {chunk.number}: embedded {len(rows) - len(failures)} images"


def _record_progress(chunk_id: int, job_id: int, done: int) -> None:
    """Set the chunk's done count and the Job's progress to the sum over its chunks."""
    db.session.execute(update(JobChunk).where(JobChunk.id == chunk_id).values(done=done))
    total_done = select(func.sum(JobChunk.done)).where(JobChunk.job_id == job_id)
    total = select(func.sum(JobChunk.size)).where(JobChunk.job_id == job_id)
    db.session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING)
                       .values(progress=total_done.scalar_subquery() * 1.0
                               / total.scalar_subquery(), heartbeat_at=utcnow()))
    db.session.commit()


def _finish_if_last(job_id: int, space: EmbeddingSpace) -> bool:
    """Mark the Job succeeded if every chunk is; True for the one caller that did.

    Each chunk commits its own success first, so the last to commit sees all of them;
    the status condition lets only one of two simultaneous finishers win.
    """
    sizes = db.session.execute(select(func.sum(JobChunk.size), func.sum(JobChunk.unreadable),
                                      func.count()).where(JobChunk.job_id == job_id)).one()
    embedded, unreadable, count = int(sizes[0]) - int(sizes[1]), int(sizes[1]), sizes[2]
    summary = embedded_summary(space, embedded, [], 0).rstrip(".") + f", in {count} chunks."
    if unreadable:
        summary += f" {unreadable} could not be read."
    unfinished = exists().where(JobChunk.job_id == job_id,
                                JobChunk.status != JobStatus.SUCCEEDED)
    result = db.session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING, ~unfinished)
        .values(status=JobStatus.SUCCEEDED, progress=1.0, message=summary,
                finished_at=utcnow(), heartbeat_at=utcnow()))
    db.session.commit()
    return result.rowcount == 1


def _queue_round(project: Project) -> None:
    """New vectors are images no round has ranked and the map has not laid out: queue a
    round and the layout, as the in-process job does."""
    try:
        submit_retrain(worker_app(), project)
    except JobAlreadyRunning:
        pass  # the running round started after some of these vectors; the next catches up
    submit_map_layout(worker_app(), project)


def _fail(job: Job, reason: str) -> str:
    mark_interrupted(job, reason)
    db.session.commit()
    return reason
