"""Telling the world a job is over: one message on the results queue (seed
000's delivery, for clients that read later) and, when the job asked for one,
a signed callback, delivered with retries through the callback queue.

Both start from the jobs table's stream, so every path that ends a job
(aggregation, a failure, a cancel, a timeout sweep) is announced, and none of
them waits for a client. The stream delivers at least once; `event_id` is the
same for every delivery of one final status, for receivers to de-duplicate.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ..jobs.model import Job, JobStatus, job_links
from ..jobs.pipeline import Pipeline

log = logging.getLogger(__name__)

NOTICE_TYPE = "job.finished"


def final_notice(job: Job, bucket: str) -> dict[str, Any]:
    """The body of the results-queue message and of the callback."""
    public = job.to_public()
    return {
        "type": NOTICE_TYPE,
        # One id per ending: the same for every delivery of it, a new one when
        # a retried job ends again (its finish time differs).
        "event_id": f"{job.job_id}/{job.status.value}/{job.finished_at or job.updated_at}",
        "job_id": job.job_id,
        "status": job.status.value,
        "processor": job.processor,
        "filename": job.filename,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "progress": public["progress"],
        "totals": job.totals,
        "error": job.error,
        "links": job_links(job.job_id, job.outputs),
        "outputs": {name: f"s3://{bucket}/{key}" for name, key in job.outputs.items()},
    }


def announce_final_statuses(pipe: Pipeline, changes: Iterable[tuple[str | None, Job | None]]) -> int:
    """For each (status before, job after) change of a job record, announce
    the ones that just became final. Returns how many were announced."""
    notices = []
    callbacks = []
    for before, job in changes:
        if job is None or not job.status.is_final:
            continue
        if before is not None and JobStatus(before).is_final:
            continue  # a later write to a finished job (its file record, a TTL)
        notice = final_notice(job, pipe.settings.bucket)
        notices.append(notice)
        if job.callback_url:
            callbacks.append({"type": "callback", "attempt": 1, "url": job.callback_url,
                              "notice": notice})
    if notices:
        pipe.results_queue.send_all(notices)
    if callbacks:
        pipe.callback_queue.send_all(callbacks)
    for notice in notices:
        log.info("job final: %s", notice["status"], extra={"job_id": notice["job_id"]})
    return len(notices)
