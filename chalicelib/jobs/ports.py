"""The three outside services the pipeline talks to, as narrow interfaces.

Each has an AWS implementation in chalicelib/adapters (taking its boto3 client
in __init__) and an in-memory one in chalicelib/jobs/memory.py; both pass the
same contract tests in tests/integration/test_contracts.py.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from .model import Job


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobRecord:
    """A free-form item beside a job (a processor's metadata record)."""

    sort_key: str
    item: dict[str, Any]
    ttl_epoch: int


class BlobStore(Protocol):
    def head(self, key: str) -> ObjectInfo: ...
    def get(self, key: str) -> bytes: ...
    def read_range(self, key: str, start: int, end: int | None) -> bytes:
        """Bytes [start, end) of the object; end None means to its end."""
    def iter_blocks(self, key: str, block_size: int) -> Iterator[bytes]: ...
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream",
            metadata: dict[str, str] | None = None) -> None: ...
    def download_to(self, key: str, path: str) -> None: ...
    def upload_from(self, path: str, key: str, content_type: str = "text/csv") -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def presign_get(self, key: str, seconds: int, filename: str | None = None) -> str:
        """A time-limited GET link; `filename` names the download."""


class TaskQueue(Protocol):
    def send_all(self, messages: Iterable[dict[str, Any]]) -> int:
        """Send JSON messages (in batches of 10); returns how many were sent."""
    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None:
        """Send one JSON message, visible after `delay_seconds` (at most 900)."""


class JobStore(Protocol):
    """Job and chunk state. Every change is conditional; a change that finds the
    item in another state raises TransitionRejectedError and changes nothing."""

    def create_job(self, job: Job, ttl_epoch: int) -> bool:
        """Create the job unless it exists; True if this call created it."""
    def get_job(self, job_id: str) -> Job: ...
    def list_jobs(self, limit: int = 50, tenant: str = "default") -> list[Job]: ...
    def transition(self, job_id: str, from_statuses: Iterable[str], to_status: str,
                   record: JobRecord | None = None, **fields: Any) -> Job:
        """Move the job to `to_status` if it is in one of `from_statuses`,
        setting `fields` at the same time; returns the job as it is after.
        `record`, when given, is stored beside the job (as put_record) in the
        same write: both or neither, so no crash keeps one without the other."""
    def put_chunks(self, job_id: str, chunks: list[dict[str, Any]], ttl_epoch: int) -> None:
        """Record planned chunks; a chunk that already exists is left as it is."""
    def complete_chunk(self, job_id: str, index: int, rows: int, result_key: str,
                       open_statuses: Iterable[str], summary: dict[str, Any] | None = None) -> bool:
        """Mark a pending chunk done (keeping `summary` on it) and count it on
        the job in one transaction. False when the chunk was already settled
        (a redelivery): nothing counted. Raises TransitionRejectedError when
        the job is not open for work."""
    def fail_chunk(self, job_id: str, index: int, error: str,
                   open_statuses: Iterable[str]) -> bool:
        """Like complete_chunk, for a chunk that cannot be processed."""
    def list_chunks(self, job_id: str) -> list[dict[str, Any]]: ...
    def get_chunk(self, job_id: str, index: int) -> dict[str, Any] | None: ...
    def note_chunk_error(self, job_id: str, index: int, error: str) -> None:
        """Keep why a delivery of a pending chunk failed (`last_error`) and
        count the attempt; a settled or unknown chunk is left as it is."""
    def retry_chunks(self, job_id: str, indexes: list[int], from_statuses: Iterable[str],
                     ttl_epoch: int) -> Job:
        """Move the failed chunks `indexes` back to pending (their error kept
        as `last_error`), take them off the job's `chunks_failed` and reopen
        the job (processing, no error, not finished) if it is in one of
        `from_statuses`; TransitionRejectedError, and nothing changed, if it
        is not. Both get `ttl_epoch` as their new expiry."""
    def list_open_jobs(self) -> list[Job]:
        """Every job not in a final status, from an index (never a scan)."""
    def put_record(self, job_id: str, sort_key: str, item: dict[str, Any], ttl_epoch: int) -> None:
        """Store a free-form item beside the job (a processor's metadata record)."""
    def get_record(self, job_id: str, sort_key: str) -> dict[str, Any] | None: ...
