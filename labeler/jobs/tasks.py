"""The tasks a ``labeler worker`` may run: each declared once, with its kind and how it runs.

A job travels to a worker as a task's name, never as a function or an import path: the
worker runs only what is declared here, and a rename cannot silently change how a task
runs (chunking used to be keyed by function-path strings). The in-process backend runs
any function it is given; the RQ backend accepts only these.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..embedding_map import compute_tsne_layout
from ..finetuning import finetune_project, resume_switch
from ..project_vectors import embed_project
from ..training import run_round
from .execute import JobFunction
from .exports import export_model_job
from .kinds import JobKind
from .pipelines import embed_then_round, import_then_embed


@dataclass(frozen=True)
class Task:
    """A job function as workers know it.

    Attributes:
        name: what travels through the queue.
        kind: the Job row's kind (and so its queue).
        function: called as ``function(progress=..., project_id=..., **kwargs)``.
        chunked: an embedding that workers share in chunks (``rq.chunks``) instead of one
            worker running ``function``.
        round_after: for a chunked embedding, queue a round when the last chunk finishes
            (what ``function`` does when it runs in one piece).
    """

    name: str
    kind: JobKind
    function: JobFunction
    chunked: bool = False
    round_after: bool = False


TASKS: dict[str, Task] = {task.name: task for task in (
    Task("embed", JobKind.EMBED, embed_project, chunked=True),
    Task("embed_then_round", JobKind.EMBED, embed_then_round, chunked=True, round_after=True),
    Task("retrain", JobKind.RETRAIN, run_round),
    Task("import_then_embed", JobKind.IMPORT, import_then_embed),
    Task("export_model", JobKind.EXPORT, export_model_job),
    Task("map_layout", JobKind.MAP, compute_tsne_layout),
    Task("finetune", JobKind.FINETUNE, finetune_project),
    Task("finetune_resume", JobKind.FINETUNE, resume_switch),
)}


def task_for(function: JobFunction, kind: str) -> Task:
    """The declared task that runs ``function`` as a job of ``kind``.

    Raises:
        ValueError: no task declares it (a worker could not run it).
    """
    for task in TASKS.values():
        if task.function is function and task.kind == kind:
            return task
    name = getattr(function, "__qualname__", repr(function))
    raise ValueError(f"{name} is not a task of kind {kind!r} in labeler.jobs.tasks.TASKS; "
                     "declare it there to run it on a worker.")
