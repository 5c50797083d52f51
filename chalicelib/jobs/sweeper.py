"""The sweeper: every few minutes, find the jobs that stopped moving and move
them, so that no job waits forever.

Progress is the job's `updated_at`: every status change and every chunk
settled writes it. The open jobs come from the table's `open_jobs` index,
never a scan. A job is stalled when it has not moved for longer than its
status allows:

- received, for twice the upload link's life: it fails (the file never came);
- splitting, for the dispatcher's timeout and one sweep: it fails (the
  dispatcher timed out or was stopped);
- processing, for (maxReceiveCount + 1) work visibility timeouts, by when
  every delivery of every chunk has been used and the DLQ handler has
  spoken: its pending chunks' messages are sent again, up to sweep_resends
  times; after that those chunks fail as lost and the job aggregates;
- aggregating, for twice the aggregator's timeout: the aggregation is queued
  once more; the next time, the job fails.

A processing job whose chunks have all settled but whose aggregation never
started (its last worker died between its count and the claim) is started
at once. Every action is a conditional write or a message that is harmless
twice, so two sweeps at the same time do no harm.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..observability import chunks_given_up
from ..settings import Settings
from .lifecycle import OPEN_FOR_WORK, fail_job, start_aggregation_if_done
from .model import ChunkStatus, Job, JobStatus, TransitionRejectedError
from .pipeline import Pipeline

log = logging.getLogger(__name__)

# How often the schedule in app.py runs the sweeper.
SWEEP_INTERVAL_S = 300


@dataclass(frozen=True)
class Deadlines:
    """Seconds without progress after which a job in each status is stalled."""

    received: int
    splitting: int
    processing: int
    aggregating: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Deadlines:
        return cls(
            received=2 * settings.presign_seconds,
            splitting=settings.dispatch_timeout_s + SWEEP_INTERVAL_S,
            processing=(settings.queue_max_receives + 1) * settings.work_visibility_s,
            aggregating=2 * settings.aggregate_timeout_s,
        )


@dataclass
class SweepReport:
    """What one sweep did, counted by action ("resent", "failed", ...)."""

    looked_at: int = 0
    actions: Counter = field(default_factory=Counter)


def sweep_stalled_jobs(pipe: Pipeline, now: datetime | None = None) -> SweepReport:
    now = now or datetime.now(UTC)
    deadlines = Deadlines.from_settings(pipe.settings)
    report = SweepReport()
    for job in pipe.store.list_open_jobs():
        report.looked_at += 1
        try:
            action = _sweep(pipe, job, _idle_seconds(job, now), deadlines)
        except TransitionRejectedError:
            action = "raced"  # the job moved while we looked: it is not stalled
        if action:
            report.actions[action] += 1
            log.info("sweeper: %s", action, extra={"job_id": job.job_id, "status": job.status.value})
    return report


def _idle_seconds(job: Job, now: datetime) -> float:
    updated = datetime.fromisoformat(job.updated_at.replace("Z", "+00:00"))
    return (now - updated).total_seconds()


def _sweep(pipe: Pipeline, job: Job, idle: float, deadlines: Deadlines) -> str | None:
    if job.status == JobStatus.PROCESSING and job.all_chunks_settled:
        return "aggregation started" if start_aggregation_if_done(pipe, job.job_id) else None
    if job.status == JobStatus.RECEIVED and idle > deadlines.received:
        return _fail(pipe, job, f"no file arrived within {_duration(deadlines.received)} of the job's "
                                "creation (its upload link had expired)")
    if job.status == JobStatus.SPLITTING and idle > deadlines.splitting:
        return _fail(pipe, job, f"splitting the file did not finish within {_duration(deadlines.splitting)} "
                                "(the dispatcher timed out or was stopped); submit the file again")
    if job.status == JobStatus.PROCESSING and idle > deadlines.processing:
        return _sweep_processing(pipe, job, deadlines)
    if job.status == JobStatus.AGGREGATING and idle > deadlines.aggregating:
        return _sweep_aggregating(pipe, job, deadlines)
    return None


def _sweep_processing(pipe: Pipeline, job: Job, deadlines: Deadlines) -> str:
    pending = [c for c in pipe.store.list_chunks(job.job_id) if c["status"] == ChunkStatus.PENDING.value]
    resends = job.sweeps.get("processing", 0)
    sendable = [c for c in pending if c.get("message")]
    if resends < pipe.settings.sweep_resends and sendable:
        # Written first: it is the sweep's claim, and it restarts the clock.
        pipe.store.transition(job.job_id, [JobStatus.PROCESSING.value], JobStatus.PROCESSING.value,
                              sweeps={**job.sweeps, "processing": resends + 1})
        pipe.work_queue.send_all(json.loads(c["message"]) for c in sendable)
        return "chunks re-sent"
    waited = _duration(deadlines.processing * (resends + 1))
    reason = f"lost: no worker settled it in {waited}" + (f" ({resends} re-sends)" if resends else "")
    failed = sum(pipe.store.fail_chunk(job.job_id, chunk["index"], reason, OPEN_FOR_WORK)
                 for chunk in pending)
    chunks_given_up(pipe.settings, job, failed, by="sweeper")
    start_aggregation_if_done(pipe, job.job_id)
    return "chunks failed as lost"


def _sweep_aggregating(pipe: Pipeline, job: Job, deadlines: Deadlines) -> str:
    if not job.sweeps.get("aggregating"):
        pipe.store.transition(job.job_id, [JobStatus.AGGREGATING.value], JobStatus.AGGREGATING.value,
                              sweeps={**job.sweeps, "aggregating": 1})
        pipe.aggregate_queue.send_all([{"type": "aggregate", "job_id": job.job_id}])
        return "aggregation re-queued"
    return _fail(pipe, job, f"the aggregation did not finish within {_duration(deadlines.aggregating)}, "
                            "even once re-queued", from_statuses=[JobStatus.AGGREGATING.value])


def _fail(pipe: Pipeline, job: Job, reason: str, from_statuses: list[str] | None = None) -> str | None:
    failed = fail_job(pipe, job, f"{job.filename}: {reason}",
                      from_statuses=from_statuses or [job.status.value])
    return "failed" if failed else None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if rest >= 60 else f"{hours} h"
