"""Ending a job, and starting its aggregation exactly once."""
from __future__ import annotations

import logging

from .model import Job, JobStatus, TransitionRejectedError, utc_now
from .pipeline import Pipeline

log = logging.getLogger(__name__)

OPEN_FOR_WORK = (JobStatus.SPLITTING.value, JobStatus.PROCESSING.value)
NOT_FINAL = tuple(s.value for s in JobStatus if not s.is_final)

FILE_RECORD = "FILE"


def fail_job(pipe: Pipeline, job: Job, error: str, from_statuses=NOT_FINAL) -> Job | None:
    """Move the job to `failed` with a reason; None if it was already final."""
    try:
        failed = pipe.store.transition(
            job.job_id, from_statuses, JobStatus.FAILED.value, error=error, finished_at=utc_now()
        )
    except TransitionRejectedError:
        return None
    log.info("job failed", extra={"job_id": job.job_id, "error": error})
    write_file_record(pipe, failed, status="error", error_message=error)
    return failed


def write_file_record(pipe: Pipeline, job: Job, status: str, error_message: str | None = None,
                      extra: dict | None = None) -> None:
    """Seed 004's per-file metadata item: status `success` or `error`."""
    record = {
        "file_name": job.filename,
        "job_id": job.job_id,
        "processor": job.processor,
        "upload_timestamp": job.created_at,
        "processed_timestamp": utc_now(),
        "status": status,
        "row_count": job.rows_done if status == "success" else 0,
        "schema": {},
        "statistics": {},
        "quality_issues": {},
        "error_message": error_message,
    }
    record.update(extra or {})
    pipe.store.put_record(job.job_id, FILE_RECORD, record, pipe.ttl_epoch())


def start_aggregation_if_done(pipe: Pipeline, job_id: str) -> bool:
    """Called after every chunk settles and after dispatch. Exactly one caller
    wins the processing → aggregating transition and queues the aggregation.
    Every caller reads after its own write, so the last settler always sees
    the count complete."""
    job = pipe.store.get_job(job_id)
    if job.status != JobStatus.PROCESSING or not job.all_chunks_settled:
        return False
    try:
        pipe.store.transition(job_id, [JobStatus.PROCESSING.value], JobStatus.AGGREGATING.value)
    except TransitionRejectedError:
        return False
    pipe.aggregate_queue.send_all([{"type": "aggregate", "job_id": job_id}])
    return True
