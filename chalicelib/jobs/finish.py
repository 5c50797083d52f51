"""Aggregation: fold every chunk's partial, let the processor finish, write
the outputs, and end the job. Runs once per job (the aggregating status is
claimed by exactly one worker); a redelivered aggregation message finds the
job already final and does nothing."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from ..processors import FinishContext, fold, get_processor
from .lifecycle import fail_job, write_file_record
from .model import (
    ChunkStatus,
    InputError,
    JobStatus,
    ServiceError,
    TransitionRejectedError,
    unexpected_error,
    utc_now,
)
from .pipeline import Pipeline, result_key

log = logging.getLogger(__name__)


def aggregate_job(pipe: Pipeline, job_id: str) -> str:
    job = pipe.store.get_job(job_id)
    if job.status != JobStatus.AGGREGATING:
        return "skipped"
    processor = get_processor(job.processor)
    chunks = sorted(pipe.store.list_chunks(job_id), key=lambda c: c["index"])
    failed = [c for c in chunks if c["status"] == ChunkStatus.FAILED.value]
    done = [c for c in chunks if c["status"] == ChunkStatus.DONE.value]
    errors = [{"chunk": c["index"], "first_row": c.get("first_row"), "error": c.get("error")}
              for c in failed]
    row_errors: list[dict] = []

    def partials() -> Iterator[dict]:
        for chunk in done:
            body = json.loads(pipe.blobs.get(chunk["result_key"]))
            row_errors.extend(e for e in body.get("events", []) if e.get("type") == "row_error")
            yield body["partial"]

    if not done:
        reason = failed[0]["error"] if failed else "no chunk produced any rows"
        fail_job(pipe, job, f"{job.filename}: {reason}", from_statuses=[JobStatus.AGGREGATING.value])
        return "failed"
    merged = fold(processor, partials())
    ctx = FinishContext(job_id=job_id, filename=job.filename, options=job.options,
                        chunks_failed=len(failed), chunk_errors=[e["error"] for e in errors])
    try:
        outcome = processor.finish(merged, ctx)
    except ServiceError:
        raise
    except InputError as exc:
        reason = str(exc)
        if row_errors and job.rows_done == 0:
            shown = "; ".join(e["error"] for e in row_errors[:3])
            more = f" (and {len(row_errors) - 3} more)" if len(row_errors) > 3 else ""
            reason = f"every data row was rejected: {shown}{more}"
        fail_job(pipe, job, f"{job.filename}: {reason}", from_statuses=[JobStatus.AGGREGATING.value])
        return "failed"
    except Exception as exc:  # noqa: BLE001 - see unexpected_error
        log.exception("finishing job %s failed", job_id)
        fail_job(pipe, job, f"{job.filename}: {unexpected_error(exc)}",
                 from_statuses=[JobStatus.AGGREGATING.value])
        return "failed"

    result = dict(outcome.result)
    if row_errors or errors:
        result["errors"] = {
            "rejected_rows": len(row_errors),
            "rows": row_errors[:1000],
            "failed_chunks": errors,
        }
    for key, data in outcome.files.items():
        pipe.blobs.put(key, data, content_type="application/json")
    key = result_key(job_id)
    pipe.blobs.put(key, json.dumps(result, ensure_ascii=False).encode("utf-8"), "application/json")
    problems = outcome.problems + len(row_errors) + len(failed)
    status = JobStatus.COMPLETED_WITH_ERRORS if problems else JobStatus.COMPLETED
    outputs = {"result": key, **{name.split("/")[0]: name for name in outcome.files}}
    try:
        final = pipe.store.transition(
            job_id, [JobStatus.AGGREGATING.value], status.value,
            result_key=key, outputs=outputs, finished_at=utc_now(),
        )
    except TransitionRejectedError:
        return "skipped"
    write_file_record(pipe, final, status="success", extra=outcome.record)
    return status.value
