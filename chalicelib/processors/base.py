"""The processor interface: what every processor (profile, carbon, scan, pages)
plugs into.

A job's input is split into chunks. For each chunk a worker calls
`process(chunk, emit)`, which returns a ChunkResult: a *partial*, a JSON-able
dict whose size does not grow with the rows it covers, and for processors
that answer every row (carbon) the per-row output as a DataFrame, which the
pipeline stores beside the chunk and streams into the job's row file and
report without ever holding all of it. When every chunk has settled, the
finisher folds the partials with `merge` in chunk order (left covers the
earlier chunks) and calls `finish` once to produce the result and any output
files. `emit` lets a processor report events while it works (a row it rejects,
a match it finds); the pipeline stores them with the chunk and hands them to
the notifiers.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

Partial = dict[str, Any]
Emit = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class TableChunk:
    """A chunk of rows. Every cell is text exactly as the file had it
    (whitespace kept; a missing trailing field is ""); `row_numbers` are the
    spreadsheet-style numbers of the rows (the header is row 1)."""

    index: int
    frame: pd.DataFrame
    row_numbers: pd.Series
    options: Mapping[str, Any]
    job_id: str = ""
    #: outside services a processor may use, by name (e.g. "factor_api"), each
    #: built for this job by the pipeline; empty in pure unit tests.
    services: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DocumentChunk:
    """A chunk of documents (scan). `names` are the documents' names as the
    user knows them (paths inside the zip, or S3 keys); `read(name)` returns
    a document's bytes or raises DocumentError, `link(name)` a presigned
    link to it, both supplied by the pipeline so processors never see S3.
    `first_number` is the 1-based number of the chunk's first document."""

    index: int
    names: tuple[str, ...]
    read: Callable[[str], bytes]
    link: Callable[[str], str]
    options: Mapping[str, Any]
    first_number: int = 1
    job_id: str = ""


@dataclass(frozen=True)
class PageChunk:
    """A batch of pages of one document (pages). `pages` yields the batch's
    pages in order (sources.pages.Page: a text layer, or an image decoded on
    demand that may raise PageError); `ocr` reads an image's text (an
    ocr.OcrEngine); `kind` is "tiff" or "pdf"."""

    index: int
    first_page: int
    last_page: int
    kind: str
    pages: Iterable[Any]
    ocr: Any
    options: Mapping[str, Any]
    job_id: str = ""


@dataclass
class ChunkResult:
    partial: Partial
    #: one output row per input row answered, in input order; the columns are
    #: the processor's `row_columns`. None for processors without row output.
    rows: pd.DataFrame | None = None
    #: a few figures kept on the chunk's own record (seed 002's BATCH#n:
    #: its NPI pages and OCR confidence), shown while the job runs
    summary: dict[str, Any] | None = None


@dataclass(frozen=True)
class FinishContext:
    job_id: str
    filename: str
    options: Mapping[str, Any]
    chunks_failed: int = 0
    chunk_errors: list[str] = field(default_factory=list)
    #: how many items (documents, pages) the job has, when its plan counted them
    items_total: int | None = None


@dataclass
class Outcome:
    """What `finish` produces.

    result:   the JSON body of GET /jobs/<id>/result.
    files:    extra output files, by key relative to the bucket, e.g. the
              profile's processed/<name>_summary.json.
    record:   an item stored beside the job (seed 004's file metadata).
    problems: rows or items the processor rejected; any makes the job
              `completed_with_errors` rather than `completed`.
    totals:   a few headline figures, kept on the job and sent with the
              final-status notice (results queue, callback).
    report:   the Summary sheet of the Excel report, and for processors
              without row output the table for its second sheet.
    strict_failure: set when the caller asked for strictness and the rows
              rejected must fail the job; the message says why.
    source_outputs: outputs made from the job's source file itself (the
              pages' PDF), which the pipeline downloads once to build them.
    """

    result: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    record: dict[str, Any] | None = None
    problems: int = 0
    totals: dict[str, Any] = field(default_factory=dict)
    report: ReportContent | None = None
    strict_failure: str | None = None
    source_outputs: list[SourceOutput] = field(default_factory=list)


@dataclass(frozen=True)
class SourceOutput:
    """An output built from the source file: `build(source_path, out_path)`
    writes it, raising InputError when the source does not allow it (the job
    then completes with errors, its other outputs intact). `name` is its
    key in the job's outputs and its route (GET /jobs/<id>/<name>)."""

    name: str
    suffix: str
    content_type: str
    build: Callable[[str, str], None]


@dataclass
class ReportContent:
    """What a processor puts in its Excel report beyond the rows and errors
    the pipeline adds. `sections` are (heading, [(label, value), ...]) blocks
    of the Summary sheet; `tables` are (heading, header, rows) tables on it;
    `sheet` is (name, header, rows) for a processor without row output."""

    sections: list[tuple[str, list[tuple[str, Any]]]] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[Any]]]] = field(default_factory=list)
    sheet: tuple[str, list[str], list[list[Any]]] | None = None


@dataclass(frozen=True)
class RowColumn:
    """A column of a processor's per-row output: its name in the row file,
    its header in reports, and its kind ("text", "number", "integer")."""

    name: str
    header: str
    kind: str = "text"


class Processor(Protocol):
    name: str
    #: the kinds of chunk it reads: "table" for rows from CSV and Excel
    #: (TableChunk), "documents" for files in a zip or listed by a manifest
    #: (DocumentChunk), "pages" for batches of one document's pages (PageChunk)
    chunk_kind: str
    #: the per-row output's columns, or None when it has none
    row_columns: list[RowColumn] | None
    #: the kinds of file it reads, as sources.sniff names them ("csv", "xlsx", "zip", "tiff", "pdf")
    input_kinds: tuple[str, ...]

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Check and normalise the caller's options; raise InputError with a
        message naming the bad option. The options the pipeline itself reads
        (max_failed_percent) never reach it: option_checks.pipeline_options
        checks them once for every processor."""

    # Optional: `option_defaults(settings) -> dict`, stage-wide defaults the
    # job's own options override (carbon's factor source).

    def process(self, chunk: TableChunk | DocumentChunk | PageChunk, emit: Emit) -> ChunkResult: ...

    def merge(self, left: Partial, right: Partial) -> Partial: ...

    def finish(self, merged: Partial | None, ctx: FinishContext) -> Outcome:
        """merged is None when no chunk produced a partial (all failed)."""


def fold(processor: Processor, partials: Iterable[Partial]) -> Partial | None:
    merged: Partial | None = None
    for partial in partials:
        merged = partial if merged is None else processor.merge(merged, partial)
    return merged
