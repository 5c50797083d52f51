"""Messages the queues gave up on: each queue's RedrivePolicy moves a message
to its dead-letter queue after maxReceiveCount deliveries, and the app
listens there, so a chunk or an aggregation that never succeeds ends its job
with a reason instead of leaving it waiting.

A chunk in the work DLQ is marked failed ("gave up after 5 deliveries:
<the last error its worker noted>") and counted like any failed chunk: the
job then aggregates (or fails, beyond options.max_failed_percent). An
aggregation in the aggregate DLQ fails its job. Both are conditional: a
chunk that was settled meanwhile, or a job that ended, is left as it is.
"""
from __future__ import annotations

import logging
from typing import Any

from ..observability import chunks_given_up
from .finish import AGGREGATION_RECORD
from .lifecycle import OPEN_FOR_WORK, fail_job, start_aggregation_if_done
from .model import (
    ChunkStatus,
    ChunkTask,
    InputError,
    JobNotFoundError,
    JobStatus,
    TransitionRejectedError,
)
from .pipeline import Pipeline

log = logging.getLogger(__name__)

NO_ERROR_NOTED = "no error was noted (the worker timed out or was stopped)"


def give_up_on_chunk(pipe: Pipeline, body: dict[str, Any]) -> str:
    """A chunk message from the work DLQ. Returns failed, settled (it was
    done or failed already), closed (the job ended) or unknown."""
    task = ChunkTask.from_message(body)
    chunk = pipe.store.get_chunk(task.job_id, task.index)
    if chunk is None:
        log.warning("dead chunk %s of unknown job %s dropped", task.index, task.job_id)
        return "unknown"
    if chunk["status"] != ChunkStatus.PENDING.value:
        return "settled"
    reason = (f"gave up after {pipe.settings.queue_max_receives} deliveries: "
              f"{chunk.get('last_error') or NO_ERROR_NOTED}")
    try:
        counted = pipe.store.fail_chunk(task.job_id, task.index, reason, OPEN_FOR_WORK)
    except TransitionRejectedError:
        return "closed"
    if counted:
        log.warning("chunk given up: %s", reason, extra={"job_id": task.job_id, "chunk": task.index})
        start_aggregation_if_done(pipe, task.job_id)
        # After the aggregation's start: a failed read here redelivers a message
        # that then finds its chunk settled, and must not leave the job waiting.
        chunks_given_up(pipe.settings, pipe.store.get_job(task.job_id), 1, by="work dead-letter queue")
    return "failed" if counted else "settled"


def give_up_on_aggregation(pipe: Pipeline, body: dict[str, Any]) -> str:
    """An aggregation message from the aggregate DLQ: its job fails."""
    job_id = body.get("job_id")
    if not isinstance(job_id, str):
        raise InputError("an aggregation message names its job_id")
    try:
        job = pipe.store.get_job(job_id)
    except JobNotFoundError:
        log.warning("dead aggregation of unknown job %s dropped", job_id)
        return "unknown"
    if job.status != JobStatus.AGGREGATING:
        return "skipped"
    noted = pipe.store.get_record(job_id, AGGREGATION_RECORD) or {}
    reason = (f"{job.filename}: the aggregation was given up after {pipe.settings.queue_max_receives} "
              f"deliveries: {noted.get('last_error') or NO_ERROR_NOTED}")
    failed = fail_job(pipe, job, reason, from_statuses=[JobStatus.AGGREGATING.value])
    return "failed" if failed else "skipped"
