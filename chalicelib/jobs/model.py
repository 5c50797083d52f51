"""Jobs and chunks: what a job is, the statuses it moves through, and the
message that carries one chunk to a worker. Plain data; no AWS here."""
from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class JobStatus(enum.StrEnum):
    RECEIVED = "received"
    SPLITTING = "splitting"
    PROCESSING = "processing"
    AGGREGATING = "aggregating"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS, JobStatus.FAILED, JobStatus.CANCELLED}
)


class ChunkStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class SluiceError(Exception):
    """Base of every error Sluice raises on purpose."""


class InputError(SluiceError):
    """The user's file or request is wrong. The message says what and where,
    in words a person understands; it is shown to the user as is."""


class ServiceError(SluiceError):
    """An AWS service failed, throttled or could not be reached. Worth
    retrying: handlers let it propagate so the event is delivered again."""


def unexpected_error(exc: Exception) -> str:
    """The words for an exception nobody planned for while reading a file.
    Reading is deterministic, so a retry would fail the same way: the caller
    records this as the reason instead of crashing into a retry loop."""
    return f"the file could not be read ({type(exc).__name__}: {exc})"


def retried_error(exc: Exception) -> str:
    """The words kept for an error a retry may get past (a throttle, a 5xx, a
    timeout), so that whoever gives up on the retries can say why."""
    return f"{type(exc).__name__}: {exc}"[:1000]


class JobNotFoundError(SluiceError):
    pass


class TransitionRejectedError(SluiceError):
    """A conditional state change found the job or chunk in another state:
    someone else got there first, or the job was cancelled."""


class JobConflictError(SluiceError):
    """What was asked of a job (a retry, a cancel) does not fit its status;
    the message says why, in words shown to the caller (HTTP 409)."""


def new_job_id() -> str:
    # Time-ordered prefix so that ids sort roughly by creation.
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return f"{now}-{uuid.uuid4().hex[:12]}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Job:
    job_id: str
    processor: str
    filename: str
    source_key: str
    status: JobStatus = JobStatus.RECEIVED
    options: dict[str, Any] = field(default_factory=dict)
    tenant: str = "default"
    chunks_total: int | None = None
    chunks_done: int = 0
    chunks_failed: int = 0
    rows_done: int = 0
    #: how many items (documents) the job has, when the plan knows it up
    #: front; progress then counts items rather than chunks
    items_total: int | None = None
    #: what those items are, in words ("documents", "pages")
    items_label: str | None = None
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)
    finished_at: str | None = None
    error: str | None = None
    result_key: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    #: where the final status is POSTed (signed); None: no callback
    callback_url: str | None = None
    #: the processor's headline figures, set when the job completes
    totals: dict[str, Any] = field(default_factory=dict)
    #: what the sweeper did to the job while it stalled, by status
    #: ({"processing": 2}: its pending chunks were re-sent twice)
    sweeps: dict[str, int] = field(default_factory=dict)

    @property
    def work_counts(self) -> tuple[int, int]:
        """(processed, total) in what the job counts: documents when the plan
        knew how many there are (scan), otherwise chunks settled."""
        if self.items_total:
            return min(self.rows_done, self.items_total), self.items_total
        return self.chunks_done + self.chunks_failed, self.chunks_total or 0

    @property
    def percent(self) -> float:
        """100 once the job completed; below it until then, since the last
        chunk's settling is followed by aggregation, which is work too."""
        if self.status in (JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS):
            return 100.0
        processed, total = self.work_counts
        if not total:
            return 0.0
        return min(99.9, round(100.0 * processed / total, 1))

    @property
    def all_chunks_settled(self) -> bool:
        return (
            self.chunks_total is not None
            and self.chunks_done + self.chunks_failed >= self.chunks_total
        )

    def to_public(self) -> dict[str, Any]:
        """The job as GET /jobs/<id> shows it."""
        body: dict[str, Any] = {
            "job_id": self.job_id,
            "status": self.status.value,
            "processor": self.processor,
            "filename": self.filename,
            "options": self.options,
            "progress": {
                "chunks_total": self.chunks_total or 0,
                "chunks_done": self.chunks_done,
                "chunks_failed": self.chunks_failed,
                "rows_processed": self.rows_done,
                **({"items_total": self.items_total, "items_label": self.items_label}
                   if self.items_total else {}),
                "percent": self.percent,
            },
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
            "links": job_links(self.job_id, self.outputs),
        }
        if self.error:
            body["error"] = self.error
        if self.totals:
            body["totals"] = self.totals
        if self.outputs:
            body["outputs"] = self.outputs
        if self.callback_url:
            body["callback_url"] = self.callback_url
        return body


# Outputs some jobs have, each with a route of its own.
_OPTIONAL_OUTPUTS = ("rows", "pdf")


def job_links(job_id: str, outputs: Iterable[str] = ()) -> dict[str, str]:
    links = {"self": f"/jobs/{job_id}", "result": f"/jobs/{job_id}/result",
             "report": f"/jobs/{job_id}/report"}
    links.update({name: f"/jobs/{job_id}/{name}" for name in _OPTIONAL_OUTPUTS if name in outputs})
    return links


@dataclass(frozen=True)
class ChunkSource:
    """Where a chunk's input lives: a byte range of an S3 object.

    `end` is exclusive; None means to the end of the object. `header` is the
    CSV header line (decoded text) that every chunk but the first lacks.
    """

    key: str
    start: int = 0
    end: int | None = None
    encoding: str = "utf-8"
    delimiter: str = ","
    header: str | None = None
    first_row: int = 1  # 1-based number of the chunk's first data row, when known
    #: for document processors: the documents of this chunk, by name inside
    #: the zip at `key` (container "zip") or by their own keys ("keys")
    documents: tuple[str, ...] = ()
    container: str = ""
    #: for a zip, where each document lies in it (ZipMember.to_message()), or
    #: None for a name the zip does not hold; so that a worker reads its own
    #: members' bytes and never the zip's directory
    members: tuple[dict[str, int] | None, ...] = ()
    #: the chunk's last row, document or page, when the plan knows it
    last_row: int | None = None
    #: for processors that read parts of one file (pages): where the chunk's
    #: part lies in it (sources.pages.Layout.batch())
    location: dict[str, Any] | None = None


@dataclass(frozen=True)
class ChunkTask:
    """One SQS message: everything a worker needs, so it reads nothing else."""

    job_id: str
    index: int
    processor: str
    source: ChunkSource
    options: dict[str, Any] = field(default_factory=dict)

    def to_message(self) -> dict[str, Any]:
        s = self.source
        return {
            "type": "chunk",
            "job_id": self.job_id,
            "chunk": self.index,
            "processor": self.processor,
            "options": self.options,
            "source": {
                "key": s.key,
                "start": s.start,
                "end": s.end,
                "encoding": s.encoding,
                "delimiter": s.delimiter,
                "header": s.header,
                "first_row": s.first_row,
                **({"documents": list(s.documents), "container": s.container} if s.documents else {}),
                **({"members": list(s.members)} if s.members else {}),
                **({"last_row": s.last_row} if s.last_row is not None else {}),
                **({"location": s.location} if s.location else {}),
            },
        }

    @classmethod
    def from_message(cls, body: dict[str, Any]) -> ChunkTask:
        try:
            src = body["source"]
            return cls(
                job_id=body["job_id"],
                index=int(body["chunk"]),
                processor=body["processor"],
                options=body.get("options") or {},
                source=ChunkSource(
                    key=src["key"],
                    start=int(src.get("start") or 0),
                    end=None if src.get("end") is None else int(src["end"]),
                    encoding=src.get("encoding") or "utf-8",
                    delimiter=src.get("delimiter") or ",",
                    header=src.get("header"),
                    first_row=int(src.get("first_row") or 1),
                    documents=tuple(str(d) for d in src.get("documents") or ()),
                    container=str(src.get("container") or ""),
                    members=tuple(src.get("members") or ()),
                    last_row=None if src.get("last_row") is None else int(src["last_row"]),
                    location=src.get("location") or None,
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed chunk message: {exc!r}") from exc
