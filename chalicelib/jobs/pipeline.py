"""The pipeline's dependencies in one place, passed to every service function.

Lambda and local_cloud build it from boto3 (chalicelib/wiring.py); unit tests
build it from the in-memory fakes in chalicelib/jobs/memory.py.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..auth.keys import ApiKeyStore
from ..auth.tickets import TicketStore
from ..limits.ports import WindowCounter
from ..live.ports import ConnectionStore, LiveSender
from ..settings import Settings
from .ports import BlobStore, JobStore, TaskQueue


@dataclass
class Pipeline:
    store: JobStore
    blobs: BlobStore
    work_queue: TaskQueue
    aggregate_queue: TaskQueue
    #: one message per job that reaches a final status (seed 000's delivery)
    results_queue: TaskQueue
    #: callback deliveries, re-sent with a delay while they fail, and their DLQ
    callback_queue: TaskQueue
    callback_dlq: TaskQueue
    #: fixed-window counters shared by every Lambda (throttling, factor API rate)
    limits: WindowCounter
    #: WebSocket connections following jobs, and the way to push to them
    connections: ConnectionStore
    live: LiveSender
    settings: Settings
    #: API keys, stored by hash, each naming its tenant
    keys: ApiKeyStore
    #: one-time tickets that open a WebSocket without the key in its URL
    tickets: TicketStore
    #: outside services processors may use, by name: each factory builds the
    #: service for one job (e.g. "factor_api": the rate-limited factor client).
    services: dict[str, Callable[[str], Any]] = field(default_factory=dict)

    def ttl_epoch(self) -> int:
        return int(time.time()) + self.settings.job_ttl_days * 86400


def upload_key(job_id: str) -> str:
    """Where a job's file is uploaded. Never the caller's file name: that
    stays on the job, where it cannot choose a key."""
    return f"uploads/{job_id}/source"


def work_prefix(job_id: str) -> str:
    return f"work/{job_id}/"


def result_key(job_id: str) -> str:
    return f"results/{job_id}/result.json"
