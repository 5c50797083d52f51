"""One chunk: read its bytes, run the processor, store the partial, count it.

The partial is written before the chunk is counted, and the count is a
transaction that only moves a pending chunk, so a message delivered twice
(or a worker that dies between the two writes) never counts a chunk twice.

A chunk of a job that is no longer open (cancelled, failed) is not started.
An error worth a retry (throttling, a 5xx, a timeout) is noted on the chunk
before it propagates, so that when the queue gives up on the message the
dead-letter handler can say why (jobs/dead_letters.py).
"""
from __future__ import annotations

import json
import logging

from ..live.service import publish_chunk_events
from ..observability import bind, chunk_counted, observed_chunk
from ..processors import ChunkResult, DocumentChunk, PageChunk, TableChunk, get_processor
from ..sources.pages import open_batch
from ..sources.table import parse_csv_chunk
from .documents import ChunkDocuments, task_codes
from .lifecycle import OPEN_FOR_WORK, start_aggregation_if_done
from .model import (
    ChunkTask,
    InputError,
    JobNotFoundError,
    ServiceError,
    TransitionRejectedError,
    retried_error,
    unexpected_error,
)
from .pipeline import Pipeline, work_prefix

log = logging.getLogger(__name__)


def partial_key(job_id: str, index: int) -> str:
    return f"{work_prefix(job_id)}partials/{index:06d}.json"


def rows_key(job_id: str, index: int) -> str:
    return f"{work_prefix(job_id)}rows/{index:06d}.csv"


@observed_chunk
def run_chunk(pipe: Pipeline, task: ChunkTask) -> str:
    """Process one chunk message. Returns what happened: done, duplicate,
    failed or closed (the job no longer takes work). Transient errors are
    noted on the chunk and propagate, so the queue delivers the message again."""
    try:
        return _run_chunk(pipe, task)
    except InputError:
        raise  # a message that can never succeed: dropped, not retried
    except Exception as exc:
        _note_error(pipe, task, exc)
        raise


def _note_error(pipe: Pipeline, task: ChunkTask, exc: Exception) -> None:
    """Best effort: the error that sends the message round again, kept on the chunk."""
    try:
        pipe.store.note_chunk_error(task.job_id, task.index, retried_error(exc))
    except Exception:  # noqa: BLE001 - the store may be what is failing; the retry matters more
        log.warning("could not note the error of chunk %s of job %s", task.index, task.job_id,
                    exc_info=True)


def _run_chunk(pipe: Pipeline, task: ChunkTask) -> str:
    processor = get_processor(task.processor)
    try:
        job = pipe.store.get_job(task.job_id)
    except JobNotFoundError:
        log.warning("chunk %s of an unknown job %s dropped", task.index, task.job_id)
        return "closed"
    bind(tenant=job.tenant)
    if job.status.value not in OPEN_FOR_WORK:
        return "closed"  # cancelled, failed or already aggregating: start nothing
    events: list[dict] = []

    def emit(kind: str, body: dict) -> None:
        events.append({"type": kind, **body})

    try:
        if processor.chunk_kind == "documents":
            rows, result = _process_documents(pipe, task, processor, emit)
        elif processor.chunk_kind == "pages":
            rows, result = _process_pages(pipe, task, processor, emit)
        else:
            rows, result = _process_table(pipe, task, processor, emit)
    except InputError as exc:
        return _settle_failed(pipe, task, str(exc))
    except ServiceError:
        raise
    except Exception as exc:  # noqa: BLE001 - see unexpected_error
        log.exception("chunk %s of job %s could not be read", task.index, task.job_id)
        return _settle_failed(pipe, task, unexpected_error(exc))

    key = partial_key(task.job_id, task.index)
    body = {"chunk": task.index, "rows": rows, "partial": result.partial, "events": events}
    if result.rows is not None:
        # Written before the partial that points at it: a partial is never
        # seen without its rows. A redelivery overwrites both with the same.
        body["rows_key"] = rows_key(task.job_id, task.index)
        body["rows_out"] = int(len(result.rows))
        pipe.blobs.put(body["rows_key"], result.rows.to_csv(index=False).encode("utf-8"), "text/csv")
    pipe.blobs.put(key, json.dumps(body, separators=(",", ":")).encode(), "application/json")
    try:
        counted = pipe.store.complete_chunk(task.job_id, task.index, rows, key, OPEN_FOR_WORK,
                                            summary=result.summary)
    except TransitionRejectedError:
        return "closed"
    if counted:
        chunk_counted(rows, processor.chunk_kind)
        # Counted once per chunk, so each match is pushed once; before the
        # aggregation starts, so they reach a follower before COMPLETE.
        publish_chunk_events(pipe, task.job_id, events)
    # On a redelivery too: the first delivery may have died between its count
    # and this check, and the job would wait for an aggregation never queued.
    start_aggregation_if_done(pipe, task.job_id)
    return "done" if counted else "duplicate"


def _process_table(pipe: Pipeline, task: ChunkTask, processor, emit) -> tuple[int, ChunkResult]:
    src = task.source
    data = pipe.blobs.read_range(src.key, src.start, src.end)
    parsed = parse_csv_chunk(data, src.encoding, src.delimiter, src.header, src.first_row)
    for rejected in parsed.rejected:
        emit("row_error", rejected)
    chunk = TableChunk(index=task.index, frame=parsed.frame, row_numbers=parsed.row_numbers,
                       options=task.options, job_id=task.job_id,
                       services={name: make(task.job_id) for name, make in pipe.services.items()})
    return int(len(parsed.frame)), processor.process(chunk, emit)


def _process_documents(pipe: Pipeline, task: ChunkTask, processor, emit) -> tuple[int, ChunkResult]:
    options = {**task.options, "target_hole_codes": task_codes(pipe, dict(task.options))}
    with ChunkDocuments(pipe, task) as documents:
        chunk = DocumentChunk(index=task.index, names=task.source.documents, read=documents.read,
                              link=documents.link, options=options,
                              first_number=task.source.first_row, job_id=task.job_id)
        return len(chunk.names), processor.process(chunk, emit)


def _process_pages(pipe: Pipeline, task: ChunkTask, processor, emit) -> tuple[int, ChunkResult]:
    src = task.source
    with open_batch(pipe.blobs, src.key, src.location, pipe.settings.max_page_pixels) as pages:
        chunk = PageChunk(index=task.index, first_page=src.first_row, last_page=src.last_row,
                          kind=src.location["kind"], pages=pages, ocr=pipe.services["ocr"](task.job_id),
                          options=task.options, job_id=task.job_id)
        return len(pages), processor.process(chunk, emit)


def _settle_failed(pipe: Pipeline, task: ChunkTask, error: str) -> str:
    log.warning("chunk failed: %s", error, extra={"job_id": task.job_id, "chunk": task.index})
    try:
        counted = pipe.store.fail_chunk(task.job_id, task.index, error, OPEN_FOR_WORK)
    except TransitionRejectedError:
        return "closed"
    # On a redelivery too, as for a chunk done (see _run_chunk).
    start_aggregation_if_done(pipe, task.job_id)
    return "failed" if counted else "duplicate"
