"""From an uploaded file to chunk messages on the work queue.

A job is created when a file is announced (REST upload, presigned POST) or
when one simply appears under uploads/. Dispatch plans the chunks, records
them, and fans them out. It may run twice for the same upload (S3 delivers
events at least once): planning is deterministic, chunks are recorded only
if absent, and a chunk message sent twice is settled once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import tempfile
import time
from collections.abc import Mapping
from typing import Any

from ..auth.keys import valid_tenant
from ..notify.callbacks import validate_callback_url
from ..observability import bind, observed_job
from ..processors import get_processor
from ..processors.option_checks import pipeline_options
from ..sources.csv_plan import plan_csv, sniff_delimiter
from ..sources.excel import iter_xlsx_rows, write_csv_chunks
from ..sources.sniff import (
    TABLE_KINDS,
    describe_kind,
    detect_encoding,
    is_ascii_compatible,
    sniff_kind,
)
from .documents import plan_documents
from .lifecycle import fail_job, start_aggregation_if_done
from .model import (
    ChunkSource,
    ChunkTask,
    InputError,
    Job,
    JobStatus,
    ServiceError,
    TransitionRejectedError,
    new_job_id,
    unexpected_error,
)
from .page_batches import plan_pages
from .pipeline import Pipeline, upload_key, work_prefix

log = logging.getLogger(__name__)

SNIFF_BYTES = 64 * 1024
BLOCK_BYTES = 1024 * 1024
DEFAULT_PROCESSOR = {"csv": "profile", "xlsx": "profile", "tiff": "pages", "pdf": "pages"}


# -- announcing a job --------------------------------------------------------

def new_job(pipe: Pipeline, filename: str, processor: str, options: Mapping[str, Any] | None,
            tenant: str = "default", callback_url: str | None = None) -> Job:
    """Create a job record for a file about to be uploaded."""
    filename = clean_filename(filename)
    options = validated_options(pipe, processor, options)
    callback_url = _checked_callback(pipe, callback_url)
    job_id = new_job_id()
    job = Job(job_id=job_id, processor=processor, filename=filename,
              source_key=upload_key(job_id), options=options, tenant=tenant,
              callback_url=callback_url)
    pipe.store.create_job(job, pipe.ttl_epoch())
    return job


def validated_options(pipe: Pipeline, processor: str, options: Mapping[str, Any] | None) -> dict:
    """The job's options checked by its processor, over the stage's defaults."""
    chosen = get_processor(processor)
    defaults = chosen.option_defaults(pipe.settings) if hasattr(chosen, "option_defaults") else {}
    # The pipeline's own options (max_failed_percent) are checked once, for every processor.
    shared, own = pipeline_options({**defaults, **(options or {})})
    clean = chosen.validate_options(own)
    if not isinstance(clean.get("strict", False), bool):
        raise InputError(f"options.strict must be true or false, got {clean['strict']!r}")
    return {**clean, **shared}


def _checked_callback(pipe: Pipeline, url: str | None) -> str | None:
    if not url:
        return None
    if not pipe.settings.callback_secret:
        raise InputError("callbacks are not configured on this deployment "
                         "(SLUICE_CALLBACK_SECRET is not set); poll the job instead")
    return validate_callback_url(url, pipe.settings.callback_allow_private)


def upload_metadata(job: Job) -> dict[str, str]:
    """S3 object metadata that ties an uploaded object to its job."""
    return {"job-id": job.job_id, "processor": job.processor}


def store_upload(pipe: Pipeline, job: Job, body: bytes, content_type: str) -> None:
    pipe.blobs.put(job.source_key, body, content_type=content_type or "application/octet-stream",
                   metadata=upload_metadata(job))


def clean_filename(filename: str | None) -> str:
    name = posixpath.basename((filename or "").replace("\\", "/")).strip()
    if not name or name in (".", ".."):
        raise InputError("a filename is required, e.g. ?filename=sales.csv")
    if len(name) > 200:
        raise InputError("the filename is longer than 200 characters")
    if any(ord(c) < 32 for c in name):
        raise InputError("the filename contains control characters")
    return name


# -- an object appeared under uploads/ ----------------------------------------

def handle_uploaded_object(pipe: Pipeline, key: str, sequencer: str = "") -> str:
    """Find or create the job for an uploaded object, then dispatch it.
    Returns the job id."""
    info = pipe.blobs.head(key)
    job_id = info.metadata.get("job-id")
    if job_id:
        job = pipe.store.get_job(job_id)
    else:
        job = _job_for_dropped_object(pipe, key, sequencer, info.metadata)
        if job is None:
            return ""
    dispatch_job(pipe, job.job_id)
    return job.job_id


def _job_for_dropped_object(pipe: Pipeline, key: str, sequencer: str,
                            metadata: Mapping[str, str]) -> Job | None:
    """The job for a file dropped into uploads/ by any S3 client; its processor
    comes from the object's metadata or, failing that, from the file's type."""
    # The id derives from the object's key and S3's sequencer, so a redelivered
    # event finds the job its first delivery made.
    digest = hashlib.sha256(f"{key}\0{sequencer}".encode()).hexdigest()[:12]
    job_id = f"s3-{digest}"
    filename = clean_filename(posixpath.basename(key))
    problem = None
    processor = metadata.get("processor", "")
    options: dict[str, Any] = {}
    callback_url = None
    if not processor:
        kind = sniff_kind(pipe.blobs.read_range(key, 0, SNIFF_BYTES))
        processor = DEFAULT_PROCESSOR.get(kind, "")
        if not processor:
            problem = (f"{filename} is {describe_kind(kind)}; no processor reads it "
                       "(set the object's 'processor' metadata)")
    if not problem:
        try:
            options = validated_options(pipe, processor, json.loads(metadata.get("options") or "{}"))
        except ValueError:
            problem = "the object's 'options' metadata is not valid JSON"
        except InputError as exc:
            problem = str(exc)
    try:
        callback_url = _checked_callback(pipe, metadata.get("callback-url"))
    except InputError as exc:
        problem = problem or f"the object's 'callback-url' metadata: {exc}"
    try:
        tenant = valid_tenant(metadata.get("tenant") or pipe.settings.default_tenant)
    except InputError as exc:
        tenant, problem = pipe.settings.default_tenant, problem or f"the object's 'tenant' metadata: {exc}"
    job = Job(job_id=job_id, processor=processor or "unknown", filename=filename,
              source_key=key, options=options, callback_url=callback_url, tenant=tenant)
    if not pipe.store.create_job(job, pipe.ttl_epoch()):
        return pipe.store.get_job(job_id)
    if problem:
        fail_job(pipe, job, problem)
        return None
    return job


# -- planning and fan-out ------------------------------------------------------

@observed_job("dispatch")
def dispatch_job(pipe: Pipeline, job_id: str) -> None:
    job = pipe.store.get_job(job_id)
    bind(processor=job.processor, tenant=job.tenant)
    if job.status not in (JobStatus.RECEIVED, JobStatus.SPLITTING):
        log.info("dispatch skipped: job already %s", job.status.value, extra={"job_id": job_id})
        return
    try:
        pipe.store.transition(job_id, [JobStatus.RECEIVED.value, JobStatus.SPLITTING.value],
                              JobStatus.SPLITTING.value)
    except TransitionRejectedError:
        return
    fan_out = FanOut(pipe, job_id)
    try:
        items = plan_job(pipe, job, fan_out)
        fan_out.flush()
    except JobEndedWhileSplitting as ended:
        # Chunk files written since the cancel's own clean-up go now, not with the lifecycle rule.
        removed = pipe.blobs.delete_prefix(work_prefix(job_id))
        log.info("dispatch stopped: the job was %s while splitting", ended.status.value,
                 extra={"chunks_sent": fan_out.sent, "work_files_removed": removed})
        return
    except InputError as exc:
        fail_job(pipe, job, f"{job.filename}: {exc}")
        return
    except ServiceError:
        raise
    except Exception as exc:  # noqa: BLE001 - see unexpected_error
        log.exception("planning job %s failed", job_id)
        fail_job(pipe, job, f"{job.filename}: {unexpected_error(exc)}")
        return
    counted = {"items_total": items, "items_label": get_processor(job.processor).item_label} if items else {}
    try:
        pipe.store.transition(job_id, [JobStatus.SPLITTING.value], JobStatus.PROCESSING.value,
                              chunks_total=fan_out.sent, **counted)
    except TransitionRejectedError:
        return  # cancelled while splitting
    start_aggregation_if_done(pipe, job_id)


class JobEndedWhileSplitting(Exception):
    """The job was cancelled (or failed by the sweeper) while its file was being planned."""

    def __init__(self, status: JobStatus):
        super().__init__(f"the job is {status.value}")
        self.status = status


class FanOut:
    """Records chunks and sends their messages while the file is still being
    planned, so workers start on the first chunks as the dispatcher reads on.
    Chunks are recorded before their messages go.

    A long plan (thousands of documents, a million rows) looks at its job
    every STATUS_CHECK_SECONDS before sending more, and stops once the job has
    ended: a cancel then stops the sending, not just the work. A plan shorter
    than that makes no extra read."""

    BATCH = 10
    STATUS_CHECK_SECONDS = 2.0

    def __init__(self, pipe: Pipeline, job_id: str):
        self._pipe = pipe
        self._job_id = job_id
        self._pending: list[ChunkTask] = []
        self._checked_at = time.monotonic()
        self.sent = 0

    @property
    def next_index(self) -> int:
        return self.sent + len(self._pending)

    def add(self, task: ChunkTask) -> None:
        self._pending.append(task)
        # The first chunks go at once, then batches grow to ten: workers start
        # early and a big file still costs one SQS call per ten chunks.
        if len(self._pending) >= min(self.BATCH, max(1, self.sent)):
            self.flush()

    def flush(self) -> None:
        tasks, self._pending = self._pending, []
        if not tasks:
            return
        self._stop_if_the_job_ended()
        self._pipe.store.put_chunks(
            self._job_id,
            [{"index": t.index, "key": t.source.key, "start": t.source.start,
              "end": t.source.end, "first_row": t.source.first_row,
              **({"last_row": t.source.last_row} if t.source.last_row is not None else {}),
              # The message itself, so a retry or the sweeper can send it again.
              "message": json.dumps(t.to_message(), separators=(",", ":"))}
             for t in tasks],
            self._pipe.ttl_epoch(),
        )
        self._pipe.work_queue.send_all(t.to_message() for t in tasks)
        self.sent += len(tasks)

    def _stop_if_the_job_ended(self) -> None:
        if time.monotonic() - self._checked_at < self.STATUS_CHECK_SECONDS:
            return
        status = self._pipe.store.get_job(self._job_id).status
        self._checked_at = time.monotonic()
        if status != JobStatus.SPLITTING:
            raise JobEndedWhileSplitting(status)


def plan_job(pipe: Pipeline, job: Job, fan_out: FanOut) -> int | None:
    """Plan and send the job's chunks; returns the number of items (documents,
    pages) when the plan counts them up front, else None."""
    processor = get_processor(job.processor)
    head = pipe.blobs.read_range(job.source_key, 0, SNIFF_BYTES)
    kind = sniff_kind(head)
    if processor.chunk_kind == "table":
        if kind not in TABLE_KINDS:
            raise InputError(f"this is {describe_kind(kind)}, not CSV or Excel"
                             + ("; save it as .xlsx or CSV" if kind == "xls" else ""))
        if kind == "xlsx":
            _plan_xlsx(pipe, job, fan_out)
        else:
            _plan_csv(pipe, job, head, fan_out)
        return None
    if processor.chunk_kind == "documents":
        return plan_documents(pipe, job, kind, fan_out)
    if processor.chunk_kind == "pages":
        return plan_pages(pipe, job, kind, fan_out)
    raise InputError(f"processor {job.processor} reads {processor.chunk_kind} chunks, "
                     "which this pipeline cannot plan yet")


def _plan_csv(pipe: Pipeline, job: Job, head: bytes, fan_out: FanOut) -> None:
    if not head:
        raise InputError("the file is empty")
    encoding = job.options.get("encoding") or detect_encoding(head, complete=len(head) < SNIFF_BYTES)
    key = job.source_key
    if not is_ascii_compatible(encoding):
        key = _transcode_to_utf8(pipe, job, encoding)
        encoding = "utf-8"
        head = pipe.blobs.read_range(key, 0, SNIFF_BYTES)
    delimiter = job.options.get("delimiter") or sniff_delimiter(
        head.decode("utf-8-sig" if encoding.startswith("utf-8") else encoding, errors="replace")
    )
    chunk_encoding = "utf-8" if encoding == "utf-8-sig" else encoding
    options = _task_options(job)

    def on_range(r, header: str) -> None:
        fan_out.add(ChunkTask(job.job_id, fan_out.next_index, job.processor, options=options,
                              source=ChunkSource(key=key, start=r.start, end=r.end,
                                                 encoding=chunk_encoding, delimiter=delimiter,
                                                 header=header, first_row=r.first_row)))

    plan = plan_csv(pipe.blobs.iter_blocks(key, BLOCK_BYTES), encoding, pipe.settings.chunk_bytes,
                    delimiter, on_range)
    if plan.data_rows == 0:
        raise InputError("the file has a header but no data rows")


def _transcode_to_utf8(pipe: Pipeline, job: Job, encoding: str) -> str:
    """Rewrite a UTF-16 file once as UTF-8, streaming through a temp file."""
    import codecs

    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    key = work_prefix(job.job_id) + "source.utf8.csv"
    with tempfile.NamedTemporaryFile("wb", suffix=".csv", delete=False) as tmp:
        try:
            for block in pipe.blobs.iter_blocks(job.source_key, BLOCK_BYTES):
                tmp.write(decoder.decode(block).encode("utf-8"))
            tmp.write(decoder.decode(b"", final=True).encode("utf-8"))
        except UnicodeDecodeError as exc:
            raise InputError(f"the file looks like {encoding} but is not valid {encoding} "
                             f"text ({exc.reason})") from None
        path = tmp.name
    try:
        pipe.blobs.upload_from(path, key)
    finally:
        os.unlink(path)
    return key


def _plan_xlsx(pipe: Pipeline, job: Job, fan_out: FanOut) -> None:
    prefix = work_prefix(job.job_id) + "chunks/"
    options = _task_options(job)

    def put(index: int, data: bytes, first_row: int) -> None:
        key = f"{prefix}{index:06d}.csv"
        pipe.blobs.put(key, data, content_type="text/csv")
        fan_out.add(ChunkTask(job.job_id, index, job.processor, options=options, source=ChunkSource(
            key=key, encoding="utf-8", delimiter=",", header=None, first_row=first_row)))

    with tempfile.NamedTemporaryFile(suffix=".xlsx") as tmp:
        pipe.blobs.download_to(job.source_key, tmp.name)
        _, data_rows = write_csv_chunks(
            iter_xlsx_rows(tmp.name, job.options.get("sheet")), pipe.settings.chunk_rows, put
        )
    if data_rows == 0:
        raise InputError("the sheet has a header but no data rows")


def _task_options(job: Job) -> dict[str, Any]:
    return dict(job.options)
