"""CloudWatch metrics in the embedded metric format (EMF), and their local view.

Each record is one JSON line on stdout: on Lambda, CloudWatch Logs turns it
into metrics of the "Sluice" namespace (no PutMetricData call, no client, no
latency). Dimensions are the stage and the processor, plus the stage alone for
totals. The tenant, job and chunk ride along as plain members, searchable in
Logs Insights but never dimensions: a dimension per tenant would make a metric
(and a monthly charge) per tenant and processor, without bound.

Locally there is no CloudWatch: local_cloud names a file (SLUICE_METRICS_FILE)
that every worker appends the same lines to, and `figures()` sums them the way
CloudWatch's statistics do, for GET /metrics.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..aws import region
from ..jobs.model import Job, JobStatus
from ..jobs.pipeline import Pipeline
from ..settings import Settings

log = logging.getLogger(__name__)

NAMESPACE = "Sluice"
DIMENSION_SETS = (("Stage", "Processor"), ("Stage",))
UNITS = {
    # one record per chunk, when its work ends
    "ChunkDuration": "Milliseconds",
    "ChunksProcessed": "Count",
    "ChunksFailed": "Count",
    # the work raised (a throttle, a 5xx): the message is delivered again
    "ChunkErrors": "Count",
    # table processors count rows, the scan and pages processors documents and pages
    "ChunkRows": "Count",
    "ChunkItems": "Count",
    # from the message's SentTimestamp to the start of its invocation
    "QueueLag": "Milliseconds",
    # one record per job that reaches a final status
    "JobDuration": "Seconds",
    "JobsCompleted": "Count",
    "JobsFailed": "Count",
    "JobsCancelled": "Count",
}


def record(metrics: Mapping[str, float], dimensions: Mapping[str, str],
           properties: Mapping[str, Any] | None = None, timestamp_ms: int | None = None) -> dict[str, Any]:
    """One EMF document: the metrics and dimensions as top-level members,
    described by `_aws`, beside plain `properties`."""
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [list(names) for names in DIMENSION_SETS],
                "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in metrics],
            }],
        },
        **(properties or {}),
        **dimensions,
        **metrics,
    }


def emit(document: Mapping[str, Any], settings: Settings) -> None:
    """Write one EMF line to stdout (CloudWatch Logs), and to the local file when there is one."""
    try:
        line = json.dumps(document, separators=(",", ":")) + "\n"
        sys.stdout.write(line)  # one write: lines from threads never interleave
        sys.stdout.flush()
        if settings.metrics_file:
            # O_APPEND and one write per line: workers in several processes share the file.
            fd = os.open(settings.metrics_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
    except Exception:  # noqa: BLE001 - a lost metric never fails (and so repeats) the work it measured
        log.warning("a metric record could not be written", exc_info=True)


def _dimensions(settings: Settings, processor: str) -> dict[str, str]:
    return {"Stage": settings.stage, "Processor": processor or "unknown"}


# -- chunks ------------------------------------------------------------------------

_queue_lag: contextvars.ContextVar[float | None] = contextvars.ContextVar("sluice_queue_lag", default=None)


@contextlib.contextmanager
def queue_lag(sent_timestamps_ms: Iterable[int], now_ms: float | None = None) -> Iterator[None]:
    """How long the oldest message of the invocation waited, for the chunk records inside."""
    sent = list(sent_timestamps_ms)
    now_ms = time.time() * 1000 if now_ms is None else now_ms
    token = _queue_lag.set(max(0.0, now_ms - min(sent)) if sent else None)
    try:
        yield
    finally:
        _queue_lag.reset(token)


@dataclass
class ChunkRecord:
    """What one chunk's record will say, filled in while the chunk runs."""
    started: float = field(default_factory=time.monotonic)
    outcome: str | None = None
    rows: int | None = None
    counts_items: bool = False

    def metrics(self, raised: bool) -> dict[str, float]:
        figures = {
            "ChunkDuration": round((time.monotonic() - self.started) * 1000, 3),
            "ChunksProcessed": int(self.outcome == "done"),
            "ChunksFailed": int(self.outcome == "failed"),
            "ChunkErrors": int(raised),
        }
        if self.rows is not None:
            figures["ChunkItems" if self.counts_items else "ChunkRows"] = self.rows
        lag = _queue_lag.get()
        if lag is not None:
            figures["QueueLag"] = round(lag, 3)
        return figures


_chunk: contextvars.ContextVar[ChunkRecord | None] = contextvars.ContextVar("sluice_chunk", default=None)


@contextlib.contextmanager
def chunk_record(settings: Settings, processor: str,
                 properties: Callable[[], Mapping[str, Any]]) -> Iterator[ChunkRecord]:
    """Times the block and emits the chunk's record when it ends, raised or not.
    `properties` are asked for at the end (the tenant is known only part-way)."""
    current = ChunkRecord()
    token = _chunk.set(current)
    raised = True
    try:
        yield current
        raised = False
    finally:
        _chunk.reset(token)
        emit(record(current.metrics(raised), _dimensions(settings, processor),
                     {**properties(), "outcome": current.outcome or ("error" if raised else None)}),
             settings)


def chunk_counted(rows: int, chunk_kind: str) -> None:
    """The chunk was counted with `rows` rows (documents, pages for those kinds)."""
    current = _chunk.get()
    if current is not None:
        current.rows = int(rows)
        current.counts_items = chunk_kind != "table"


def chunks_given_up(settings: Settings, job: Job, count: int, by: str) -> None:
    """`count` chunks of `job` failed without a worker's word: the work DLQ's
    handler or the sweeper (`by`) gave up on them. Counted in ChunksFailed
    like the chunks a worker failed, which these never were."""
    if count:
        emit(record({"ChunksFailed": count}, _dimensions(settings, job.processor),
                    {"event": "chunk", "job_id": job.job_id, "tenant": job.tenant,
                     "outcome": "failed", "given_up_by": by}), settings)


# -- jobs --------------------------------------------------------------------------

def record_job_endings(pipe: Pipeline, changes: Iterable[tuple[str | None, Job | None]]) -> int:
    """One record per job that just reached a final status, from the jobs
    table's stream (every way a job ends passes there). Returns how many."""
    settings = pipe.settings
    ended = 0
    for before, job in changes:
        if job is None or not job.status.is_final or (before is not None and JobStatus(before).is_final):
            continue
        status = job.status
        emit(record({
            "JobDuration": _seconds_between(job.created_at, job.finished_at or job.updated_at),
            "JobsCompleted": int(status in (JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS)),
            "JobsFailed": int(status == JobStatus.FAILED),
            "JobsCancelled": int(status == JobStatus.CANCELLED),
        }, _dimensions(settings, job.processor),
            {"event": "job", "job_id": job.job_id, "tenant": job.tenant, "status": status.value,
             "rows_processed": job.rows_done}), settings)
        ended += 1
    return ended


def _seconds_between(start: str, end: str) -> float:
    try:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, round(seconds, 3))


# -- what GET /metrics shows ---------------------------------------------------------

def figures(settings: Settings, tenant: str) -> dict[str, Any]:
    """Locally, the caller's figures summed from the metrics file; on AWS,
    where CloudWatch shows them."""
    if not settings.metrics_file:
        return _cloudwatch_pointer(settings)
    overall: dict[str, _Stats] = {}
    by_processor: dict[str, dict[str, _Stats]] = {}
    for document in _read(settings.metrics_file):
        if document.get("tenant") != tenant or document.get("Stage") != settings.stage:
            continue
        for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            name = definition["Name"]
            values = document[name] if isinstance(document[name], list) else [document[name]]
            processor_stats = by_processor.setdefault(document["Processor"], {})
            for stats in (overall, processor_stats):
                stats.setdefault(name, _Stats(definition.get("Unit", "None"))).add(values)
    return {
        "source": "local",
        "namespace": NAMESPACE,
        "stage": settings.stage,
        "tenant": tenant,
        "metrics": {name: stats.as_dict() for name, stats in sorted(overall.items())},
        "by_processor": {processor: {name: stats.as_dict() for name, stats in sorted(metrics.items())}
                         for processor, metrics in sorted(by_processor.items())},
    }


@dataclass
class _Stats:
    """CloudWatch's statistics of one metric."""
    unit: str
    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, values: Iterable[float]) -> None:
        for value in values:
            self.count += 1
            self.total += value
            self.low = min(self.low, value)
            self.high = max(self.high, value)

    def as_dict(self) -> dict[str, Any]:
        return {"Unit": self.unit, "SampleCount": self.count, "Sum": round(self.total, 3),
                "Minimum": self.low, "Maximum": self.high, "Average": round(self.total / self.count, 3)}


def _read(path: str) -> Iterator[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if line.endswith("\n"):  # a line still being written is read next time
                    yield json.loads(line)
    except FileNotFoundError:
        return


def _cloudwatch_pointer(settings: Settings) -> dict[str, Any]:
    console = f"https://{region()}.console.aws.amazon.com/cloudwatch/home?region={region()}"
    return {
        "source": "cloudwatch",
        "namespace": NAMESPACE,
        "stage": settings.stage,
        "dimensions": [list(names) for names in DIMENSION_SETS],
        "metrics": UNITS,
        "message": ("Sluice's figures are CloudWatch metrics of this namespace, across tenants; "
                    "they are not served here."),
        "links": {"metrics": f"{console}#metricsV2?graph=~()&namespace=~'{NAMESPACE}",
                  "dashboards": f"{console}#dashboards:"},
    }
