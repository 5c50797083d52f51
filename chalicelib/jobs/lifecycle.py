"""Ending a job, and starting its aggregation exactly once."""
from __future__ import annotations

import logging
from collections.abc import Iterable

from .model import Job, JobStatus, TransitionRejectedError, utc_now
from .pipeline import Pipeline
from .ports import JobRecord

log = logging.getLogger(__name__)

OPEN_FOR_WORK = (JobStatus.SPLITTING.value, JobStatus.PROCESSING.value)
NOT_FINAL = tuple(s.value for s in JobStatus if not s.is_final)

FILE_RECORD = "FILE"
# How long the stream's copy of an aggregation message waits (SQS allows 900 s):
# long enough for most aggregations to end first, short beside the sweeper's
# two aggregator timeouts, the only other way a stranded aggregation restarts.
AGGREGATION_COPY_DELAY_S = 120


def fail_job(pipe: Pipeline, job: Job, error: str, from_statuses=NOT_FINAL) -> Job | None:
    """Move the job to `failed` with a reason, its FILE record in the same
    write; None if it was already final (and then the record is not touched)."""
    try:
        failed = pipe.store.transition(
            job.job_id, from_statuses, JobStatus.FAILED.value,
            record=file_record(pipe, job, status="error", error_message=error),
            error=error, finished_at=utc_now(),
        )
    except TransitionRejectedError:
        return None
    log.info("job failed", extra={"job_id": job.job_id, "error": error})
    return failed


def file_record(pipe: Pipeline, job: Job, status: str, error_message: str | None = None,
                extra: dict | None = None) -> JobRecord:
    """Seed 004's per-file metadata item: status `success` or `error`. Built
    from what a job keeps once it takes no more work (its name, processor,
    creation and row count), so it can go with the transition that ends it."""
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
    return JobRecord(FILE_RECORD, record, pipe.ttl_epoch())


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
    # Kept beside the stream's copy (queue_claimed_aggregations) as the fast
    # path: the aggregation starts now. The copy is delayed, so that it rarely
    # runs beside this one; it covers a winner that dies or is throttled here.
    pipe.aggregate_queue.send_all([aggregate_message(job_id)])
    return True


def aggregate_message(job_id: str) -> dict:
    return {"type": "aggregate", "job_id": job_id}


def queue_claimed_aggregations(pipe: Pipeline, changes: Iterable[tuple[str | None, Job | None]]) -> int:
    """From the jobs table's stream: queue the aggregation of every job that
    moved processing → aggregating, as its claimant did unless it died or was
    throttled in between; the stream retries until this succeeds. Delayed, so
    that the claimant's aggregation has usually ended by the time the copy
    arrives (then the copy only reads the job, final, and stops) rather than
    running beside it: harmless too (one transition ends the job), but twice
    the work. Returns how many were queued."""
    claimed = [job.job_id for before, job in changes
               if job is not None and before == JobStatus.PROCESSING.value
               and job.status == JobStatus.AGGREGATING]
    for job_id in claimed:
        pipe.aggregate_queue.send(aggregate_message(job_id), delay_seconds=AGGREGATION_COPY_DELAY_S)
    return len(claimed)
