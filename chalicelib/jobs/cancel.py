"""Cancelling a job: DELETE /jobs/<id>.

The job moves to `cancelled` by a conditional write from whatever status it
is in, as long as that is not final; from then on no chunk of it starts
(run_chunk reads the job first), none is counted (the count's transaction
requires an open job) and no aggregation claims it. Its work files go at once.
"""
from __future__ import annotations

import logging

from .lifecycle import NOT_FINAL, file_record
from .model import Job, JobConflictError, JobStatus, TransitionRejectedError, utc_now
from .pipeline import Pipeline, work_prefix

log = logging.getLogger(__name__)

CANCELLED_REASON = "the job was cancelled"


def cancel_open_job(pipe: Pipeline, job: Job) -> Job:
    """Cancel `job`; JobConflictError when it is already final."""
    try:
        cancelled = pipe.store.transition(
            job.job_id, NOT_FINAL, JobStatus.CANCELLED.value, error=CANCELLED_REASON, finished_at=utc_now(),
            record=file_record(pipe, job, status="error", error_message=CANCELLED_REASON))
    except TransitionRejectedError:
        current = pipe.store.get_job(job.job_id)
        raise JobConflictError(f"job {job.job_id} is already {current.status.value}; "
                               "only a job that has not ended can be cancelled") from None
    # A worker already past its check may still write a partial here; the
    # bucket's lifecycle rule for work/ removes what comes after this.
    removed = pipe.blobs.delete_prefix(work_prefix(job.job_id))
    log.info("job cancelled", extra={"job_id": job.job_id, "work_files_removed": removed})
    return cancelled
