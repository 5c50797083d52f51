"""Running a finished job's failed chunks again: POST /jobs/<id>/retry.

Only a job that ended with failed chunks (`failed` or `completed_with_errors`)
can be retried, and only while its work files last: the chunks that did not
fail keep their partials under work/, and the new aggregation folds them
with the retried ones'. The failed chunks go back to pending and off the
job's counters, and the job reopens to `processing`, in transactions that
require the job to be final and each chunk failed (a second retry at the same
time finds the job open and is refused). Then each chunk's own message, kept
on its record when it was first sent, goes to the work queue again.
"""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from .model import Job, JobConflictError, JobStatus, TransitionRejectedError
from .pipeline import Pipeline

log = logging.getLogger(__name__)

RETRYABLE = (JobStatus.FAILED.value, JobStatus.COMPLETED_WITH_ERRORS.value)


def retry_failed_chunks(pipe: Pipeline, job: Job) -> tuple[Job, int]:
    """Reopen `job` and send its failed chunks again; returns the job as it
    is now and how many chunks were sent. JobConflictError says why not."""
    _check_retryable(pipe, job)
    failed = [c for c in pipe.store.list_chunks(job.job_id) if c["status"] == "failed"]
    if not failed:
        current = pipe.store.get_job(job.job_id)
        if not current.status.is_final:  # another retry reset them a moment ago
            raise JobConflictError(f"job {job.job_id} is {current.status.value} now; "
                                   "it is being retried already")
        reason = f": it failed before any chunk ran ({job.error})" if not job.chunks_total else ""
        raise JobConflictError(f"job {job.job_id} has no failed chunks to retry{reason}")
    unsendable = [c["index"] for c in failed if not c.get("message")]
    if unsendable:
        raise JobConflictError(f"job {job.job_id} was planned before chunks kept their messages "
                               f"(chunks {unsendable[:5]}); submit the file again")
    try:
        reopened = pipe.store.retry_chunks(job.job_id, [c["index"] for c in failed], RETRYABLE,
                                           pipe.ttl_epoch())
    except TransitionRejectedError:
        current = pipe.store.get_job(job.job_id)
        raise JobConflictError(f"job {job.job_id} is {current.status.value} now; "
                               "it is being retried already") from None
    pipe.work_queue.send_all(json.loads(c["message"]) for c in failed)
    log.info("job retried", extra={"job_id": job.job_id, "chunks": len(failed)})
    return reopened, len(failed)


def _check_retryable(pipe: Pipeline, job: Job) -> None:
    status = job.status
    if not status.is_final:
        raise JobConflictError(f"job {job.job_id} is {status.value}; only a job that has ended "
                               "can be retried")
    if status == JobStatus.CANCELLED:
        raise JobConflictError(f"job {job.job_id} was cancelled and its work files removed; "
                               "submit the file again")
    if status == JobStatus.COMPLETED:
        raise JobConflictError(f"job {job.job_id} completed without failed chunks; "
                               "there is nothing to retry")
    # Work files expire N days after they were written; keep a day's margin
    # so that no partial vanishes while the retried job aggregates.
    window_days = pipe.settings.work_files_days - 1
    created = datetime.fromisoformat(job.created_at.replace("Z", "+00:00"))
    if (datetime.now(UTC) - created).total_seconds() > window_days * 86400:
        raise JobConflictError(f"job {job.job_id} is older than {window_days} day(s), the time its "
                               "work files are kept for a retry; submit the file again")
