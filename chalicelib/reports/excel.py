"""The job's Excel report, written with openpyxl's write-only workbook.

Write-only mode streams each row to a temporary XML file as it is appended,
so memory stays flat however many rows the caller streams in. Its price is
ordering: column widths, frozen panes and header styles must be set before
the first row, which is why the first SAMPLE_ROWS rows are read ahead to size
the columns and then written like the rest.

Sheets, in order: "Summary"; the row sheet (continued on "<name> (2)", ...
when it outgrows Excel's row limit); "Errors".
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Any, BinaryIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, Cell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from .cells import CONVERTERS, KINDS, auto, display_width, text

#: Rows per sheet, header included (Excel's limit). Tests lower it.
MAX_SHEET_ROWS = 1_048_576
#: Rows read ahead to size the columns.
SAMPLE_ROWS = 200
MIN_WIDTH, MAX_WIDTH = 8.0, 60.0

_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_HEADER_ALIGN = Alignment(vertical="top", wrap_text=True)
_TITLE_FONT = Font(bold=True, size=14)
_HEADING_FONT = Font(bold=True)
_ERROR_CODES = frozenset(ERROR_CODES)
# Excel's forbidden characters, and those XML cannot hold
_SHEET_NAME_FORBIDDEN = re.compile("[][:*?/\\\\\x00-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Column:
    """A column of a row sheet. `kind` decides how values are stored (see
    reports.cells); `width` (characters) and `number_format` override the
    defaults (width sized from the header and the first rows; General)."""

    header: str
    kind: str = "text"
    width: float | None = None
    number_format: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.header!r}: kind must be one of {KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class SummarySection:
    """A heading over (label, value) lines."""

    heading: str
    items: Sequence[tuple[str, Any]]


@dataclass(frozen=True)
class SummaryTable:
    """A heading over a small table (totals by scope, per-column statistics)."""

    heading: str
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]


@dataclass
class RowSheet:
    """A sheet of rows. `rows` is consumed once, lazily: pass a generator that
    streams from storage rather than a list. A row shorter than `columns` ends
    in empty cells; values beyond the columns are not written."""

    name: str
    columns: Sequence[Column]
    rows: Iterable[Sequence[Any]]


@dataclass
class Report:
    title: str
    summary: Sequence[SummarySection | SummaryTable] = ()
    rows: RowSheet | None = None
    errors: RowSheet | None = None


@dataclass
class ReportStats:
    #: sheet names in workbook order
    sheets: list[str] = field(default_factory=list)
    #: rows written per sheet: lines of the Summary, data rows (no header) of the others
    rows: dict[str, int] = field(default_factory=dict)
    #: size of the file written, when the target was a path
    bytes: int | None = None


def error_sheet(rows: Iterable[Sequence[Any]], extra: Sequence[Column] = ()) -> RowSheet:
    """The "Errors" sheet: each row is (row number, message, *extra values)."""
    return RowSheet("Errors", [Column("Row", "integer"), Column("Error", "text", width=60), *extra], rows)


def write_report(target: str | os.PathLike | BinaryIO, report: Report) -> ReportStats:
    """Write `report` as .xlsx to a path or a binary file object."""
    wb = Workbook(write_only=True)
    wb.properties.title = text(report.title)
    wb.properties.creator = "Sluice"
    taken: set[str] = set()
    stats = ReportStats()
    name = _sheet_name("Summary", taken)
    stats.sheets.append(name)
    stats.rows[name] = _write_summary(wb.create_sheet(name), report)
    for sheet in (report.rows, report.errors):
        if sheet is not None:
            for name, count in _write_row_sheet(wb, sheet, taken):
                stats.sheets.append(name)
                stats.rows[name] = count
    wb.save(target)
    if isinstance(target, str | os.PathLike):
        stats.bytes = os.path.getsize(target)
    return stats


def _write_summary(ws: WriteOnlyWorksheet, report: Report) -> int:
    # The summary is small: build it whole, size the columns, then write.
    lines: list[tuple[str, list[Any]]] = [("title", [text(report.title)])]
    for block in report.summary:
        lines += [("plain", []), ("heading", [text(block.heading)])]
        if isinstance(block, SummaryTable):
            lines.append(("header", [text(h) for h in block.header]))
            lines += [("plain", [auto(v) for v in row]) for row in block.rows]
        else:
            lines += [("plain", [text(label), auto(value)]) for label, value in block.items]
    widths: dict[int, int] = {}
    for style, values in lines:
        if style != "title":  # the title may run across empty cells
            for i, value in enumerate(values):
                widths[i] = max(widths.get(i, 0), display_width(value))
    for i, width in widths.items():
        ws.column_dimensions[get_column_letter(i + 1)].width = _clamp(width)
    for style, values in lines:
        ws.append([_summary_cell(ws, style, v) for v in values])
    return len(lines)


def _summary_cell(ws: WriteOnlyWorksheet, style: str, value: Any) -> Any:
    if style == "header":
        return _header_cell(ws, value)
    if style in ("title", "heading"):
        cell = _string_cell(ws, value)
        cell.font = _TITLE_FONT if style == "title" else _HEADING_FONT
        return cell
    return _string_cell(ws, value) if value in _ERROR_CODES else value


def _write_row_sheet(wb: Workbook, sheet: RowSheet, taken: set[str]) -> Iterator[tuple[str, int]]:
    """Write the sheet, splitting it at MAX_SHEET_ROWS; yield (name, data rows)
    for each part."""
    columns = list(sheet.columns)
    converters = [CONVERTERS[c.kind] for c in columns]

    def convert(row: Sequence[Any]) -> list[Any]:
        return [f(v) for f, v in zip(converters, row, strict=False)]  # short rows end early

    source = iter(sheet.rows)
    sample = [convert(row) for row in islice(source, SAMPLE_ROWS)]
    widths = [_column_width(c, [r[i] for r in sample if i < len(r)]) for i, c in enumerate(columns)]
    body: Iterator[list[Any]] = chain(sample, map(convert, source))
    per_sheet = MAX_SHEET_ROWS - 1
    part = 1
    while True:
        name = _sheet_name(sheet.name, taken, part)
        ws = wb.create_sheet(name)
        for i, width in enumerate(widths, 1):
            ws.column_dimensions[get_column_letter(i)].width = width
        ws.freeze_panes = "A2"
        ws.append([_header_cell(ws, text(c.header)) for c in columns])
        to_cells = _cell_maker(ws, columns)
        count = 0
        for values in islice(body, per_sheet):
            ws.append(to_cells(values))
            count += 1
        if columns:
            ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{count + 1}"
        yield name, count
        if count < per_sheet:
            return
        following = next(body, None)  # a full sheet: start another only if rows remain
        if following is None:
            return
        body = chain([following], body)
        part += 1


def _cell_maker(ws: WriteOnlyWorksheet, columns: Sequence[Column]) -> Callable[[list[Any]], list[Any]]:
    """What `ws.append` gets for a row of converted values: plain values, which
    openpyxl types itself, except where that typing would be wrong or a column
    has a number format."""
    # One reusable cell per formatted column: write-only mode serialises a row
    # during append, so a cell object is free again by the next row.
    formatted = []
    for i, column in enumerate(columns):
        if column.number_format:
            cell = WriteOnlyCell(ws)
            cell.number_format = column.number_format
            formatted.append((i, cell))

    def to_cells(values: list[Any]) -> list[Any]:
        for i, cell in formatted:
            if i < len(values) and values[i] is not None:
                cell.value = values[i]
                if isinstance(values[i], str):
                    cell.data_type = "s"  # never a formula or an error value
                values[i] = cell
        # openpyxl would store text such as "#N/A" as an error value; the
        # set test runs in C, so ordinary rows pay almost nothing for it.
        if not _ERROR_CODES.isdisjoint(values):
            values = [_string_cell(ws, v) if type(v) is str and v in _ERROR_CODES else v for v in values]
        return values

    return to_cells


def _header_cell(ws: WriteOnlyWorksheet, value: str | None) -> Cell:
    cell = _string_cell(ws, value)
    cell.font, cell.fill, cell.alignment = _HEADER_FONT, _HEADER_FILL, _HEADER_ALIGN
    return cell


def _string_cell(ws: WriteOnlyWorksheet, value: Any) -> Cell:
    cell = WriteOnlyCell(ws, value)
    if isinstance(value, str):
        cell.data_type = "s"
    return cell


def _sheet_name(wanted: str, taken: set[str], part: int = 1) -> str:
    """A valid, unused sheet name: Excel forbids []:*?/\\, a leading or trailing
    apostrophe and more than 31 characters, and compares names case-blind."""
    base = _SHEET_NAME_FORBIDDEN.sub("_", wanted).strip("'") or "Sheet"
    while True:
        suffix = f" ({part})" if part > 1 else ""
        name = base[: 31 - len(suffix)].strip("'") + suffix
        if name.casefold() not in taken:
            taken.add(name.casefold())
            return name
        part += 1


def _column_width(column: Column, sample: list[Any]) -> float:
    if column.width:
        return column.width
    # +3 leaves room for the header's filter button
    return _clamp(max([len(column.header) + 3, *map(display_width, sample)]))


def _clamp(width: float) -> float:
    return round(min(MAX_WIDTH, max(MIN_WIDTH, width * 1.1 + 2)), 1)
