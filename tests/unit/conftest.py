"""Shared fixtures for the input and profile tests: a profile run at the
processor level (plan, parse, process, merge, finish, with every partial
going through JSON as it does in S3) and a whole job on the in-memory
pipeline."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.processors import FinishContext, TableChunk, fold, get_processor
from chalicelib.sources.csv_plan import plan_csv, sniff_delimiter
from chalicelib.sources.table import parse_csv_chunk
from tests.support.memory_pipeline import memory_pipeline, run_file


@dataclass
class Profiled:
    summary: dict[str, Any]
    files: dict[str, bytes]
    record: dict[str, Any] | None
    chunks: int
    rejected: list[dict]


def _profile(data: bytes, chunk_bytes: int = 1 << 30, options: dict | None = None,
             encoding: str = "utf-8", delimiter: str | None = None, filename: str = "data.csv") -> Profiled:
    processor = get_processor("profile")
    options = processor.validate_options(options or {})
    plan = plan_csv([data], encoding, chunk_bytes)
    delimiter = delimiter or sniff_delimiter(data[:65536].decode(encoding, errors="replace"))
    partials, rejected = [], []
    for i, r in enumerate(plan.ranges):
        parsed = parse_csv_chunk(data[r.start:r.end], encoding, delimiter, plan.header, r.first_row)
        rejected += parsed.rejected
        chunk = TableChunk(index=i, frame=parsed.frame, row_numbers=parsed.row_numbers, options=options)
        partial = processor.process(chunk, lambda kind, body: None).partial
        partials.append(json.loads(json.dumps(partial)))  # stored in S3 as JSON
    merged = fold(processor, partials)
    outcome = processor.finish(merged, FinishContext(job_id="j", filename=filename, options=options))
    return Profiled(outcome.result, outcome.files, outcome.record, len(plan.ranges), rejected)


@pytest.fixture
def profile():
    """profile(data, chunk_bytes=..., options=...) -> Profiled."""
    return _profile


@dataclass
class Ran:
    pipe: Any
    job: Any
    result: dict[str, Any] | None
    raw_result: bytes | None
    record: dict[str, Any] | None


def _run(data: bytes, filename: str = "data.csv", chunk_bytes: int = 8 << 20, chunk_rows: int = 100_000,
         options: dict | None = None, shuffle: int | None = None) -> Ran:
    pipe = memory_pipeline(chunk_bytes=chunk_bytes, chunk_rows=chunk_rows)
    job = run_file(pipe, data, filename=filename, options=options, shuffle=shuffle)
    raw = pipe.blobs.get(job.result_key) if job.result_key else None
    return Ran(pipe, job, json.loads(raw) if raw else None, raw,
               pipe.store.get_record(job.job_id, "FILE"))


@pytest.fixture
def run_job():
    """run_job(data, filename=..., chunk_bytes=..., options=...) -> Ran: the
    whole pipeline on in-memory fakes."""
    return _run
