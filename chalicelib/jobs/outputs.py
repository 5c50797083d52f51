"""What a finished job leaves in S3: the result JSON, the processor's own
files, the per-row output as one CSV, and the Excel report.

Nothing here holds a whole job in memory: chunk files are read one at a time,
the row file and the report are streamed to a temporary file and uploaded.
"""
from __future__ import annotations

import io
import itertools
import json
import os
import posixpath
import tempfile
from collections.abc import Iterator
from typing import Any

import pandas as pd

from ..processors import Outcome, Partial, Processor, ReportContent, RowColumn
from ..reports.cells import FORMULA_PREFIXES
from ..reports.excel import Column, Report, RowSheet, SummarySection, SummaryTable, error_sheet, write_report
from .model import InputError, Job
from .pipeline import Pipeline, result_key
from .ports import BlobStore

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Row errors kept in memory while folding (for the result and failure messages).
KEPT_ROW_ERRORS = 1000


def rows_file_key(job_id: str) -> str:
    return f"results/{job_id}/rows.csv"


def report_key(job_id: str) -> str:
    return f"results/{job_id}/report.xlsx"


def download_name(job: Job, suffix: str) -> str:
    """What a downloaded output is called: sales.csv -> sales_report.xlsx."""
    return f"{posixpath.splitext(job.filename)[0]}_{suffix}"


def report_filename(job: Job) -> str:
    return download_name(job, "report.xlsx")


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
    columns = processor.row_columns
    with tempfile.TemporaryDirectory(prefix="sluice-") as tmp:
        if outcome.source_outputs:
            outputs.update(_write_source_outputs(pipe, job, outcome, tmp))
        path = os.path.join(tmp, "result.json")
        _write_result(path, outcome.result, files, columns)
        pipe.blobs.upload_from(path, result_key(job.job_id), content_type="application/json")
        outputs["result"] = result_key(job.job_id)
        if columns is not None:
            path = os.path.join(tmp, "rows.csv")
            _write_row_file(_row_frames(files, columns, integer_dtype="Int64"), columns, path)
            pipe.blobs.upload_from(path, rows_file_key(job.job_id), content_type="text/csv")
            outputs["rows"] = rows_file_key(job.job_id)
        path = os.path.join(tmp, "report.xlsx")
        write_report(path, _report(job, processor, outcome, files, failed_chunks))
        pipe.blobs.upload_from(path, report_key(job.job_id), content_type=XLSX)
        outputs["report"] = report_key(job.job_id)
    return outputs


def source_output_key(job_id: str, name: str, suffix: str) -> str:
    return f"results/{job_id}/{name}{suffix}"


def _write_source_outputs(pipe: Pipeline, job: Job, outcome: Outcome, tmp: str) -> dict[str, str]:
    """Build each output made from the source, which is downloaded once. One
    that the source does not allow is the job's problem, named in the result,
    and takes nothing else with it."""
    source = os.path.join(tmp, "source")
    pipe.blobs.download_to(job.source_key, source)
    written: dict[str, str] = {}
    for output in outcome.source_outputs:
        path = os.path.join(tmp, output.name + output.suffix)
        try:
            output.build(source, path)
        except InputError as exc:
            outcome.problems += 1
            outcome.result = {**outcome.result, "output_errors": {
                **outcome.result.get("output_errors", {}), output.name: str(exc)}}
            continue
        key = source_output_key(job.job_id, output.name, output.suffix)
        pipe.blobs.upload_from(path, key, content_type=output.content_type)
        written[output.name] = key
    os.remove(source)
    return written


def _write_result(path: str, result: dict[str, Any], files: ChunkFiles,
                  columns: list[RowColumn] | None) -> None:
    """The result JSON; for processors with row output, every row's output
    under "rows", streamed chunk by chunk into the file."""
    head = json.dumps(result, ensure_ascii=False)
    with open(path, "w", encoding="utf-8") as out:
        if columns is None:
            out.write(head)
            return
        out.write(head[:-1] + (', "rows": [' if result else '"rows": ['))
        first = True
        # Nullable Int64: an integer column with gaps stays 1, 2, null in JSON, not 1.0.
        for frame in _row_frames(files, columns, integer_dtype="Int64"):
            if frame.empty:
                continue
            records = frame.to_json(orient="records", force_ascii=False, double_precision=15)
            out.write(("" if first else ",") + records[1:-1])
            first = False
        out.write("]}")


def _row_frames(files: ChunkFiles, columns: list[RowColumn],
                integer_dtype: str | None = None) -> Iterator[pd.DataFrame]:
    """Each chunk's row output, read back with its columns' types. Integer
    columns with gaps read as floats unless `integer_dtype` says otherwise
    (the report's cells turn whole floats back into ints themselves)."""
    types: dict[str, Any] = {c.name: str for c in columns if c.kind == "text"}
    if integer_dtype:
        types.update({c.name: integer_dtype for c in columns if c.kind == "integer"})
    for body in files.row_file_bodies():
        yield pd.read_csv(io.BytesIO(body), dtype=types, keep_default_na=False,
                          na_values={c.name: [""] for c in columns if c.kind != "text"})


def _report(job: Job, processor: Processor, outcome: Outcome, files: ChunkFiles,
            failed_chunks: list[dict]) -> Report:
    content = outcome.report or ReportContent()
    summary: list[SummarySection | SummaryTable] = [SummarySection("Job", [
        ("job id", job.job_id), ("file", job.filename), ("processor", job.processor),
        ("created", job.created_at),
        (f"{getattr(processor, 'item_label', 'rows')} read", job.rows_done),
        ("rows rejected", files.row_error_count), ("chunks failed", len(failed_chunks)),
    ])]
    summary += [SummarySection(heading, items) for heading, items in content.sections]
    summary += [SummaryTable(heading, header, rows) for heading, header, rows in content.tables]
    rows = None
    if processor.row_columns is not None:
        columns = processor.row_columns
        rows = RowSheet("Rows", [Column(c.header, c.kind) for c in columns],
                        (row for frame in _row_frames(files, columns)
                         for row in frame.itertuples(index=False, name=None)))
    elif content.sheet is not None:
        name, header, lines = content.sheet
        rows = RowSheet(name, [Column(h, "number") for h in header], lines)
    chunk_lines = ([e.get("first_row"), f"chunk {e['chunk']} failed: {e['error']}"] for e in failed_chunks)
    row_lines = ([e.get("row"), e.get("error")] for e in files.row_errors())
    return Report(title=f"Sluice {job.processor} report: {job.filename}", summary=summary,
                  rows=rows, errors=error_sheet(itertools.chain(chunk_lines, row_lines)))


def _write_row_file(frames: Iterator[pd.DataFrame], columns: list[RowColumn], path: str) -> None:
    """One CSV of every chunk's rows, the header once. Text that a
    spreadsheet would run as a formula (= + - @ tab CR LF first) gets a
    leading apostrophe, as the Excel report's cells do (OWASP's advice for
    CSV injection); numbers stay numbers."""
    text = [c.name for c in columns if c.kind == "text"]
    with open(path, "w", encoding="utf-8", newline="") as out:
        for number, frame in enumerate(frames):
            for name in text:
                values = frame[name].astype(str)
                frame[name] = values.where(~values.str.startswith(FORMULA_PREFIXES), "'" + values)
            frame.to_csv(out, index=False, header=number == 0)
