"""A whole pipeline on the in-memory fakes, with a hand-cranked 'queue'."""
from __future__ import annotations

import dataclasses
import random

from chalicelib.auth.memory import MemoryApiKeyStore, MemoryTicketStore
from chalicelib.jobs.dispatch import handle_uploaded_object, new_job, store_upload
from chalicelib.jobs.finish import aggregate_job
from chalicelib.jobs.memory import MemoryBlobStore, MemoryJobStore, MemoryTaskQueue
from chalicelib.jobs.model import ChunkTask
from chalicelib.jobs.pipeline import Pipeline
from chalicelib.jobs.work import run_chunk
from chalicelib.limits.memory import MemoryWindowCounter
from chalicelib.live.memory import MemoryConnectionStore, RecordingSender
from chalicelib.ocr import engine_for
from chalicelib.settings import Settings


def memory_pipeline(**overrides) -> Pipeline:
    settings = dataclasses.replace(Settings.from_env(), **overrides)
    return Pipeline(store=MemoryJobStore(), blobs=MemoryBlobStore(), work_queue=MemoryTaskQueue(),
                    aggregate_queue=MemoryTaskQueue(), results_queue=MemoryTaskQueue(),
                    callback_queue=MemoryTaskQueue(), callback_dlq=MemoryTaskQueue(),
                    limits=MemoryWindowCounter(), connections=MemoryConnectionStore(),
                    live=RecordingSender(), settings=settings, keys=MemoryApiKeyStore(),
                    tickets=MemoryTicketStore(),
                    services={"ocr": lambda job_id: engine_for("tesseract")})


def run_file(pipe: Pipeline, data: bytes, filename: str = "data.csv", processor: str = "profile",
             options: dict | None = None, shuffle: int | None = None, duplicate: bool = False):
    """Upload, dispatch, work every chunk (optionally shuffled or each twice)
    and aggregate. Returns the final job."""
    job = new_job(pipe, filename, processor, options or {})
    store_upload(pipe, job, data, "text/csv")
    handle_uploaded_object(pipe, job.source_key)
    drain(pipe, shuffle=shuffle, duplicate=duplicate)
    return pipe.store.get_job(job.job_id)


def drain(pipe: Pipeline, shuffle: int | None = None, duplicate: bool = False) -> None:
    tasks = pipe.work_queue.drain()
    if duplicate:
        tasks = tasks + tasks
    if shuffle is not None:
        random.Random(shuffle).shuffle(tasks)
    for body in tasks:
        run_chunk(pipe, ChunkTask.from_message(body))
    for body in pipe.aggregate_queue.drain():
        aggregate_job(pipe, body["job_id"])
