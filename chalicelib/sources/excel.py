"""Excel workbooks, streamed row by row with openpyxl's read-only mode and
rewritten once as CSV chunk files, so that workers read them like any CSV."""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator
from typing import Any

from ..jobs.model import InputError
from .csv_plan import MAX_COLUMNS
from .packages import check_xlsx_archive, xml_refusal

#: a run of at least this many empty rows (and at least a chunk's worth) is
#: not written: the chunk after it starts at its next row
SKIPPED_BLANK_ROWS = 1000


def iter_xlsx_rows(path: str, sheet: Any = None) -> Iterator[tuple[int, list[str]]]:
    """(spreadsheet row number, cells as text) for every row of the sheet from
    row 1, empty rows included (as [] or empty strings). `sheet` is a name or
    a 1-based position; the first sheet when None."""
    import openpyxl  # heavy; only dispatchers of Excel files pay for it

    check_xlsx_archive(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken package
        refused = xml_refusal(exc)
        raise InputError(f"the Excel file cannot be read safely: {refused}" if refused else
                         f"the Excel file cannot be opened: {_first_line(exc)}") from None
    try:
        ws = _choose_sheet(book, sheet)
        # The <dimension> a writer records may be wrong (some write "A1" for
        # any sheet) and read-only mode would stop there; read every row.
        if hasattr(ws, "reset_dimensions"):
            ws.reset_dimensions()
        rows = ws.iter_rows(min_row=1, min_col=1, values_only=True)
        number = 0
        while True:
            try:
                values = next(rows)
            except StopIteration:
                break
            except Exception as exc:  # damage inside the sheet shows only as it is read
                refused = xml_refusal(exc)
                raise InputError(
                    f"the Excel file cannot be read safely: sheet {ws.title!r}: {refused}" if refused else
                    f"the Excel file is damaged: sheet {ws.title!r} cannot be read after row "
                    f"{number} ({type(exc).__name__}: {_first_line(exc)})"
                ) from None
            number += 1
            yield number, [_cell_text(v) for v in values]
    finally:
        book.close()


def _first_line(exc: Exception) -> str:
    # openpyxl adds a paragraph of advice to some of its errors
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _choose_sheet(book, sheet):
    ws = _pick_sheet(book, sheet)
    if not hasattr(ws, "iter_rows"):
        raise InputError(f"sheet {ws.title!r} is a chart sheet, not a table; "
                         f"choose another with options.sheet (the sheets are {book.sheetnames})")
    return ws


def _pick_sheet(book, sheet):
    names = book.sheetnames
    if sheet is None or sheet == "":
        # the first sheet that holds cells (a workbook may open on a chart)
        return book.worksheets[0] if book.worksheets else book[names[0]]
    if isinstance(sheet, int) or (isinstance(sheet, str) and sheet.isdigit() and sheet not in names):
        position = int(sheet)
        if not 1 <= position <= len(names):
            raise InputError(
                f"options.sheet is {position} but the workbook has {len(names)} sheet(s): {names}"
            )
        return book[names[position - 1]]
    if sheet not in names:
        raise InputError(f"options.sheet {sheet!r} is not in the workbook; its sheets are {names}")
    return book[sheet]


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep="T")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def write_csv_chunks(rows: Iterator[tuple[int, list[str]]], rows_per_chunk: int,
                     put: Callable[[int, bytes, int], None]) -> tuple[int, int]:
    """Write the rows as CSV chunk files, each with the header first, through
    put(index, data, first_row). Returns (chunks written, rows with any value).

    The table is the header's columns: cells to the right of its last
    header are not read. Empty rows are written, so that row numbers inside
    a chunk file stay the sheet's own, except a long run of them (before a
    value far down, at row 1,048,576): the next chunk starts after it instead."""
    # The header is the first row with a value; empty rows above it (a sheet
    # whose table starts lower down) are skipped.
    width = 0
    for _, header in rows:
        width = _trimmed_width(header)
        if width:
            break
    if width == 0:
        raise InputError("the sheet is empty")
    if width > MAX_COLUMNS:
        raise InputError(f"the header has {width:,} columns; Sluice reads at most {MAX_COLUMNS:,} "
                         "(as many as Excel has)")
    chunks = _ChunkWriter(header[:width], rows_per_chunk, put)
    data_rows = blank_run = 0
    for number, cells in rows:
        cells = (cells + [""] * width)[:width]
        if not any(cells):
            blank_run += 1
            continue
        if blank_run >= max(rows_per_chunk, SKIPPED_BLANK_ROWS):
            chunks.close()
        elif blank_run:
            chunks.write_blank(number - blank_run, blank_run)
        blank_run = 0
        chunks.write(number, cells)
        data_rows += 1
    chunks.close()
    return chunks.count, data_rows


class _ChunkWriter:
    """CSV chunk files of at most `rows_per_chunk` rows, the header first in
    each; a chunk also ends when closed (before a skipped run of empty rows)."""

    def __init__(self, header: list[str], rows_per_chunk: int, put: Callable[[int, bytes, int], None]):
        self._header = header
        self._rows_per_chunk = rows_per_chunk
        self._put = put
        self.count = 0
        self._buffer: io.StringIO | None = None
        self._writer: Any = None
        self._rows = 0
        self._first_row = 0

    def write_blank(self, first: int, count: int) -> None:
        empty = [""] * len(self._header)
        for number in range(first, first + count):
            self.write(number, empty)

    def write(self, number: int, cells: list[str]) -> None:
        if self._buffer is None:
            self._buffer, self._writer = _new_buffer(self._header)
            self._first_row, self._rows = number, 0
        self._writer.writerow(cells)
        self._rows += 1
        if self._rows == self._rows_per_chunk:
            self.close()

    def close(self) -> None:
        if self._buffer is not None:
            self._put(self.count, self._buffer.getvalue().encode("utf-8"), self._first_row)
            self.count += 1
            self._buffer = None


def _trimmed_width(header: list[str]) -> int:
    width = len(header)
    while width and header[width - 1] == "":
        width -= 1
    return width


def _new_buffer(header: list[str]):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    return buf, writer
