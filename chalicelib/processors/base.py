"""The processor interface: what every processor (profile, carbon, scan, pages)
plugs into.

A job's input is split into chunks. For each chunk a worker calls
`process(chunk, emit)`, which returns a *partial*: a JSON-able dict whose size
does not grow with the rows it covers. When every chunk has settled, the
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


@dataclass(frozen=True)
class FinishContext:
    job_id: str
    filename: str
    options: Mapping[str, Any]
    chunks_failed: int = 0
    chunk_errors: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """What `finish` produces.

    result:   the JSON body of GET /jobs/<id>/result.
    files:    extra output files, by key relative to the bucket, e.g. the
              profile's processed/<name>_summary.json.
    record:   an item stored beside the job (seed 004's file metadata).
    problems: rows or items the processor rejected; any makes the job
              `completed_with_errors` rather than `completed`.
    """

    result: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    record: dict[str, Any] | None = None
    problems: int = 0


class Processor(Protocol):
    name: str
    #: the kinds of chunk it reads: "table" for rows from CSV and Excel
    chunk_kind: str

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Check and normalise the caller's options; raise InputError with a
        message naming the bad option."""

    def process(self, chunk: TableChunk, emit: Emit) -> Partial: ...

    def merge(self, left: Partial, right: Partial) -> Partial: ...

    def finish(self, merged: Partial | None, ctx: FinishContext) -> Outcome:
        """merged is None when no chunk produced a partial (all failed)."""


def fold(processor: Processor, partials: Iterable[Partial]) -> Partial | None:
    merged: Partial | None = None
    for partial in partials:
        merged = partial if merged is None else processor.merge(merged, partial)
    return merged
