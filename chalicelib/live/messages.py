"""The messages a WebSocket client receives, in seed 001's shapes and words.

STARTED, PROGRESS (`value` a whole percentage, `processed`, `total`),
MATCH_FOUND, COMPLETE (`download_url`, `total_matches`, `total_processed`,
`message`) and ERROR are seed 001's. Every message also carries `job_id`, so
one connection can follow several jobs; ROW_ERROR is Sluice's own, for the
rows a processor rejects.
"""
from __future__ import annotations

from typing import Any

from ..jobs.model import Job, JobStatus, utc_now


def started(job: Job) -> dict[str, Any]:
    return {"type": "STARTED", "job_id": job.job_id, "message": "Processing started",
            "timestamp": utc_now()}


def progress(job: Job) -> dict[str, Any]:
    """Progress in what the processor counts: documents when the plan knows
    how many there are (scan), otherwise chunks settled of all chunks; 100
    only once the job is final."""
    processed, total = job.work_counts
    value = 100 if job.status.is_final else min(99, int(100 * processed / total)) if total else 0
    return {"type": "PROGRESS", "job_id": job.job_id, "value": value,
            "processed": processed if not job.status.is_final else max(processed, total),
            "total": total, "rows_processed": job.rows_done, "status": job.status.value}


def match_found(job_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "MATCH_FOUND", "job_id": job_id, "data": data}


def row_error(job_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "ROW_ERROR", "job_id": job_id, "data": data}


def complete(job: Job, download_url: str | None) -> dict[str, Any]:
    matches = job.totals.get("total_matches", 0)
    words = ("Processing completed successfully" if job.status == JobStatus.COMPLETED
             else "Processing completed with errors")
    return {"type": "COMPLETE", "job_id": job.job_id, "status": job.status.value,
            "download_url": download_url, "total_matches": matches,
            "total_processed": job.totals.get("total_processed", job.rows_done),
            "totals": job.totals, "message": words}


def error(message: str, job_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "ERROR", "message": message}
    if job_id:
        body["job_id"] = job_id
    return body
