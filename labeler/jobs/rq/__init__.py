"""Jobs on RQ/Redis, chosen by ``QUEUE_URL``: the distributed counterpart of
``labeler.jobs.threads.JobRunner``.

- ``backend``: ``RqBackend.submit``, the queues and how a job is enqueued.
- ``entry``: what an RQ job runs on a worker: the Job row's task, and failure handling.
- ``chunks``: an embed job split into chunks that several workers share.
- ``worker``: ``LabelerWorker``, an RQ worker with heartbeats and dead-worker detection.

The Job row stays the record of status and progress; nothing reads RQ for them.
"""
