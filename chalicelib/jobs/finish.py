"""Aggregation: fold every chunk's partial, let the processor finish, write
the outputs, and end the job. Takes effect once per job: the final
transition, from aggregating, succeeds once. A second aggregation message (a
redelivery, the stream's copy of it) finds the job final and does nothing;
one that arrives while the first still runs does the same work again, writes
the same outputs to the same keys, and loses the transition.

Failed chunks are tolerated up to options.max_failed_percent of the job's
chunks (0 unless the job says, as Step Functions' tolerated failure
percentage): above it the job fails, otherwise it completes with errors and
lists them. An error worth a retry is kept beside the job (its AGGREGATION
record) before it propagates, for the dead-letter handler to report.
"""
from __future__ import annotations

import logging
from typing import Any

from ..observability import bind, observed_job
from ..processors import FinishContext, Outcome, fold, get_processor
from .lifecycle import fail_job, file_record
from .model import (
    ChunkStatus,
    InputError,
    Job,
    JobStatus,
    ServiceError,
    TransitionRejectedError,
    retried_error,
    unexpected_error,
    utc_now,
)
from .outputs import ChunkFiles, write_outputs
from .pipeline import Pipeline

log = logging.getLogger(__name__)

# Row errors shown in the result JSON; the Excel report's Errors sheet has all.
RESULT_ROW_ERRORS = 1000
# The record beside the job that keeps the last error of its aggregation.
AGGREGATION_RECORD = "AGGREGATION"


@observed_job("aggregate")
def aggregate_job(pipe: Pipeline, job_id: str) -> str:
    try:
        return _aggregate(pipe, job_id)
    except Exception as exc:
        _note_error(pipe, job_id, exc)
        raise


def _note_error(pipe: Pipeline, job_id: str, exc: Exception) -> None:
    try:
        pipe.store.put_record(job_id, AGGREGATION_RECORD,
                              {"last_error": retried_error(exc), "at": utc_now()},
                              pipe.ttl_epoch())
    except Exception:  # noqa: BLE001 - best effort: the retry matters more
        log.warning("could not note the aggregation error of job %s", job_id, exc_info=True)


def _aggregate(pipe: Pipeline, job_id: str) -> str:
    job = pipe.store.get_job(job_id)
    bind(processor=job.processor, tenant=job.tenant)
    if job.status != JobStatus.AGGREGATING:
        return "skipped"
    processor = get_processor(job.processor)
    chunks = sorted(pipe.store.list_chunks(job_id), key=lambda c: c["index"])
    failed = [c for c in chunks if c["status"] == ChunkStatus.FAILED.value]
    done = [c for c in chunks if c["status"] == ChunkStatus.DONE.value]
    failed_chunks = [{"chunk": c["index"], "first_row": c.get("first_row"), "error": c.get("error")}
                     for c in failed]
    files = ChunkFiles(pipe.blobs, [c["result_key"] for c in done])
    if not done:
        reason = failed[0]["error"] if failed else "no chunk produced any rows"
        return _fail(pipe, job, reason)
    too_many = _too_many_failed(job, failed_chunks, len(chunks))
    if too_many:
        return _fail(pipe, job, too_many)

    merged = fold(processor, files.partials())
    ctx = FinishContext(job_id=job_id, filename=job.filename, options=job.options,
                        chunks_failed=len(failed), chunk_errors=[e["error"] for e in failed_chunks],
                        items_total=job.items_total)
    try:
        outcome = processor.finish(merged, ctx)
    except ServiceError:
        raise
    except InputError as exc:
        reason = str(exc)
        if files.row_error_count and job.rows_done == 0:
            reason = "every data row was rejected: " + _first_errors(
                files.first_row_errors, files.row_error_count)
        return _fail(pipe, job, reason)
    except Exception as exc:  # noqa: BLE001 - see unexpected_error
        log.exception("finishing job %s failed", job_id)
        return _fail(pipe, job, unexpected_error(exc))

    problems = outcome.problems + files.row_error_count + len(failed)
    if problems and job.options.get("strict"):
        shown = _first_errors([{"error": f"chunk {e['chunk']}: {e['error']}"} for e in failed_chunks]
                              + files.first_row_errors, problems)
        return _fail(pipe, job, outcome.strict_failure or
                     f"strict mode: {problems} row(s) or chunk(s) could not be processed: {shown}")

    _attach_errors(outcome, files, failed_chunks)
    try:
        outputs = write_outputs(pipe, job, processor, outcome, files, failed_chunks)
    except ServiceError:
        raise
    except Exception as exc:  # noqa: BLE001 - a retry would fail the same way: end the job instead
        log.exception("writing the outputs of job %s failed", job_id)
        return _fail(pipe, job, unexpected_error(exc))
    # An output the source did not allow (write_outputs counts it) is a problem too.
    problems = outcome.problems + files.row_error_count + len(failed)
    status = JobStatus.COMPLETED_WITH_ERRORS if problems else JobStatus.COMPLETED
    try:
        # The FILE record goes in the same write: a record written after it
        # would be lost to a crash in between (the redelivery finds the job
        # final), and one written before could outlive a transition lost to
        # another ending (a sweep's failure, a cancel).
        pipe.store.transition(
            job_id, [JobStatus.AGGREGATING.value], status.value,
            record=file_record(pipe, job, status="success", extra=outcome.record),
            result_key=outputs["result"], outputs=outputs, totals=outcome.totals,
            finished_at=utc_now(),
        )
    except TransitionRejectedError:
        return "skipped"
    return status.value


def _attach_errors(outcome: Outcome, files: ChunkFiles, failed_chunks: list[dict]) -> None:
    if files.row_error_count or failed_chunks:
        outcome.result = {**outcome.result, "errors": {
            "rejected_rows": files.row_error_count,
            "rows": files.first_row_errors[:RESULT_ROW_ERRORS],
            "failed_chunks": failed_chunks,
        }}
        outcome.totals = {**outcome.totals, "rows_rejected": files.row_error_count,
                          "chunks_failed": len(failed_chunks)}


def _too_many_failed(job: Job, failed_chunks: list[dict], total: int) -> str | None:
    """Why the failed chunks fail the job, or None while they are tolerated."""
    tolerated = job.options.get("max_failed_percent", 0)
    share = 100.0 * len(failed_chunks) / total if total else 0.0
    if not failed_chunks or share <= tolerated:
        return None
    shown = _first_errors([{"error": f"chunk {e['chunk']}: {e['error']}"} for e in failed_chunks],
                          len(failed_chunks))
    return (f"{len(failed_chunks)} of {total} chunks failed ({share:.3g}%), more than "
            f"options.max_failed_percent allows ({tolerated}%): {shown}")


def _first_errors(errors: list[dict[str, Any]], total: int, shown: int = 3) -> str:
    text = "; ".join(_with_row(e) for e in errors[:shown])
    more = f" (and {total - shown} more)" if total > shown else ""
    return text + more


def _with_row(error: dict[str, Any]) -> str:
    message = str(error.get("error"))
    if error.get("row") is None or message.startswith("row "):
        return message
    return f"row {error['row']}: {message}"


def _fail(pipe: Pipeline, job: Job, reason: str) -> str:
    fail_job(pipe, job, f"{job.filename}: {reason}", from_statuses=[JobStatus.AGGREGATING.value])
    return "failed"
