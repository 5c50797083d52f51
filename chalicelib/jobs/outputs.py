"""What a finished job leaves in S3: the result JSON, the processor's own
files, the per-row output as one CSV, and the Excel report.

Nothing here holds a whole job in memory: chunk files are read one at a time,
the row file and the report are streamed to a temporary file and uploaded.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from ..processors import Outcome, Partial, Processor
from .model import Job
from .pipeline import Pipeline, result_key
from .ports import BlobStore

# Row errors kept in memory while folding (for the result and failure messages).
KEPT_ROW_ERRORS = 1000


def rows_file_key(job_id: str) -> str:
    return f"results/{job_id}/rows.csv"


def report_key(job_id: str) -> str:
    return f"results/{job_id}/report.xlsx"


class ChunkFiles:
    """The stored results of a job's done chunks (work.py writes them), read
    in chunk order. `partials()` is the first pass, which also counts the
    rejected rows; `row_errors()` and `row_files()` read again as needed."""

    def __init__(self, blobs: BlobStore, keys: list[str]):
        self._blobs = blobs
        self._keys = keys
        self.row_error_count = 0
        self.first_row_errors: list[dict[str, Any]] = []
        self.rows_keys: list[str] = []

    def _bodies(self) -> Iterator[dict[str, Any]]:
        for key in self._keys:
            yield json.loads(self._blobs.get(key))

    def partials(self) -> Iterator[Partial]:
        for body in self._bodies():
            errors = [e for e in body.get("events", []) if e.get("type") == "row_error"]
            self.row_error_count += len(errors)
            room = KEPT_ROW_ERRORS - len(self.first_row_errors)
            self.first_row_errors.extend(errors[:max(room, 0)])
            if body.get("rows_key"):
                self.rows_keys.append(body["rows_key"])
            yield body["partial"]

    def row_errors(self) -> Iterator[dict[str, Any]]:
        for body in self._bodies():
            for event in body.get("events", []):
                if event.get("type") == "row_error":
                    yield event

    def row_file_bodies(self) -> Iterator[bytes]:
        for key in self.rows_keys:
            yield self._blobs.get(key)


def write_outputs(pipe: Pipeline, job: Job, processor: Processor, outcome: Outcome,
                  files: ChunkFiles, failed_chunks: list[dict]) -> dict[str, str]:
    """Write every output of the job; returns their keys by name."""
    outputs: dict[str, str] = {}
    for key, data in outcome.files.items():
        pipe.blobs.put(key, data, content_type="application/json")
        outputs[key.split("/")[0]] = key
    key = result_key(job.job_id)
    pipe.blobs.put(key, json.dumps(outcome.result, ensure_ascii=False).encode("utf-8"),
                   "application/json")
    outputs["result"] = key
    with tempfile.TemporaryDirectory(prefix="sluice-") as tmp:
        if processor.row_columns is not None:
            path = os.path.join(tmp, "rows.csv")
            _concatenate_csv(files.row_file_bodies(), path)
            pipe.blobs.upload_from(path, rows_file_key(job.job_id), content_type="text/csv")
            outputs["rows"] = rows_file_key(job.job_id)
    return outputs


def _concatenate_csv(bodies: Iterator[bytes], path: str) -> None:
    """One CSV from the chunks' CSVs: the first header, then every chunk's rows."""
    with open(path, "wb") as out:
        first = True
        for body in bodies:
            if not first:
                body = body[body.find(b"\n") + 1:] if b"\n" in body else b""
            out.write(body)
            first = False
