"""Splitting a CSV into byte ranges without ever cutting a quoted field.

The file is read once, as a stream of blocks. In RFC 4180 CSV a newline is a
record end exactly when an even number of quote characters comes before it
(an escaped quote "" counts twice), so one vectorised pass per block finds
every record end. The plan holds, per chunk, its byte range and the
spreadsheet-style number of its first row, so workers can name rows exactly.
Encodings must be ASCII-compatible: UTF-8 and the single-byte code pages never
put the bytes of '"' or '\\n' inside another character.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from ..jobs.model import InputError

QUOTE = 0x22
NEWLINE = 0x0A
DELIMITERS = ",;\t|"
#: columns a table may have: as many as Excel has (each costs every chunk
#: the same work, however few its rows)
MAX_COLUMNS = 16_384
_CR_ONLY = ("the lines end with a carriage return (CR) alone, as on classic Mac OS: save the file "
            "with LF or CRLF line ends")


@dataclass
class CsvRange:
    start: int
    end: int
    first_row: int  # the header is row 1


@dataclass
class CsvPlan:
    header: str
    data_rows: int  # records after the header, blank lines included
    ranges: list[CsvRange] = field(default_factory=list)
    unterminated_quote: bool = False


def plan_csv(blocks: Iterable[bytes], encoding: str, chunk_bytes: int,
             delimiter: str = ",",
             on_range: Callable[[CsvRange, str], None] | None = None) -> CsvPlan:
    """The plan of the whole file. `on_range(range, header)` hears of each
    range as soon as it is known, so work can start before the scan ends."""
    offset = 0
    parity = 0
    delim = ord(delimiter) if len(delimiter) == 1 and ord(delimiter) < 128 else QUOTE
    prev_byte = NEWLINE  # the start of the file is a field's start
    last_kept_quote = -2
    header_bytes = bytearray()
    header_end: int | None = None
    chunk_start = 0
    rows_in_chunk = 0
    next_row = 2
    ranges: list[CsvRange] = []
    last_byte_newline = True
    header: str | None = None
    # A UTF-8 byte order mark is not text: the field after it starts at byte 3.
    first_bytes = bytearray()
    bom_end = None

    def found(r: CsvRange) -> None:
        nonlocal header
        ranges.append(r)
        if on_range is not None:
            if header is None:
                header = _checked_header(bytes(header_bytes), encoding, delimiter)
            on_range(r, header)

    for block in blocks:
        if not block:
            continue
        arr = np.frombuffer(block, dtype=np.uint8)
        if len(first_bytes) < len(_BOM):
            first_bytes += block[:len(_BOM) - len(first_bytes)]
            if first_bytes == _BOM and encoding.lower().startswith("utf-8"):
                bom_end = len(_BOM)
        quotes = _field_quotes(arr, np.flatnonzero(arr == QUOTE), parity, prev_byte, delim,
                               last_kept_quote - offset, None if bom_end is None else bom_end - offset)
        if quotes.size:
            last_kept_quote = int(quotes[-1]) + offset
        prev_byte = int(arr[-1])
        newlines = np.flatnonzero(arr == NEWLINE)
        if quotes.size:
            before = np.searchsorted(quotes, newlines) + parity
            ends = newlines[(before & 1) == 0]
        else:
            ends = newlines if parity == 0 else newlines[:0]
        parity = (parity + int(quotes.size)) & 1
        ends = ends.astype(np.int64) + offset

        if header_end is None:
            if ends.size == 0:
                header_bytes += block
                offset += len(block)
                last_byte_newline = block.endswith(b"\n")
                if len(header_bytes) > 1_048_576:
                    raise InputError(_CR_ONLY if _cr_ends_records(header_bytes, encoding, delimiter) else
                                     "the CSV header line is longer than 1 MiB; is this really CSV?")
                continue
            first = int(ends[0]) - offset
            header_bytes += block[: first + 1]
            header_end = int(ends[0]) + 1
            chunk_start = header_end
            ends = ends[1:]

        while ends.size:
            target = chunk_start + chunk_bytes - 1
            i = int(np.searchsorted(ends, target))
            if i >= ends.size:
                rows_in_chunk += int(ends.size)
                break
            cut = int(ends[i]) + 1
            rows = rows_in_chunk + i + 1
            found(CsvRange(chunk_start, cut, next_row))
            next_row += rows
            rows_in_chunk = 0
            chunk_start = cut
            ends = ends[i + 1:]
        offset += len(block)
        last_byte_newline = block.endswith(b"\n")

    size = offset
    if size == 0:
        raise InputError("the file is empty")
    if header_end is None:
        if _cr_ends_records(header_bytes, encoding, delimiter):
            raise InputError(_CR_ONLY)
        header_end = size
        chunk_start = size
    if chunk_start < size:
        if not last_byte_newline or parity == 1:
            # a last record with no line end after it (or whose quote never
            # closes, so that its last newline is inside the field)
            rows_in_chunk += 1
        found(CsvRange(chunk_start, size, next_row))
        next_row += rows_in_chunk
    header = header if header is not None else _checked_header(bytes(header_bytes), encoding, delimiter)
    return CsvPlan(header=header, data_rows=next_row - 2, ranges=ranges,
                   unterminated_quote=parity == 1)


def _cr_ends_records(raw: bytes | bytearray, encoding: str, delimiter: str) -> bool:
    """Whether text with no LF holds records that CR alone ends (outside quotes)."""
    if b"\r" not in raw:
        return False
    text = bytes(raw).decode("utf-8-sig" if encoding.startswith("utf-8") else encoding, errors="replace")
    try:
        records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        return next(records, None) is not None and any(record for record in records)
    except csv.Error:  # a field past the csv module's size limit: not a short CR-ended record
        return False


def _checked_header(raw: bytes, encoding: str, delimiter: str) -> str:
    header = _decode_header(raw, encoding)
    if not header.strip():
        raise InputError("the first line (the header) is empty")
    if header.count(delimiter) >= MAX_COLUMNS:
        try:
            columns = len(next(csv.reader(io.StringIO(header, newline=""), delimiter=delimiter), []))
        except csv.Error:  # a field past the csv module's size limit
            columns = header.count(delimiter) + 1
        if columns > MAX_COLUMNS:
            raise InputError(f"the header has {columns:,} columns; Sluice reads at most {MAX_COLUMNS:,} "
                             "(as many as Excel has)")
    return header


_FIELD_START = (NEWLINE, 0x0D)
_BOM = b"\xef\xbb\xbf"


def _field_quotes(arr: np.ndarray, quotes: np.ndarray, parity: int, prev_byte: int, delim: int,
                  last_kept: int, field_start: int | None = None) -> np.ndarray:
    """The quotes that quote: one in an opening place must stand at a field's
    start (after a delimiter or a line end, or at `field_start`: right after a
    byte order mark) or right after a closing quote (an escaped ""). Any
    other, like the one in `5'11"`, is a plain character to pandas and the
    csv module alike, and must not flip the parity."""
    if quotes.size == 0:
        return quotes
    before = np.where(quotes > 0, arr[np.maximum(quotes - 1, 0)], prev_byte)
    opening = ((np.arange(quotes.size) + parity) & 1) == 0
    at_start = (before == delim) | np.isin(before, _FIELD_START) | (quotes == field_start)
    if not (opening & ~at_start & (before != QUOTE)).any():
        return quotes  # the common case, decided without a Python loop
    kept: list[int] = []
    for q in quotes.tolist():
        if (len(kept) + parity) & 1 == 0:
            b = int(arr[q - 1]) if q > 0 else prev_byte
            escaped = b == QUOTE and (kept[-1] if kept else last_kept) == q - 1
            if not (b == delim or b in _FIELD_START or escaped or q == field_start):
                continue
        kept.append(q)
    return np.asarray(kept, dtype=np.int64)


def _decode_header(raw: bytes, encoding: str) -> str:
    try:
        text = raw.decode("utf-8-sig" if encoding.startswith("utf-8") else encoding)
    except UnicodeDecodeError as exc:
        raise InputError(f"the header line is not valid {encoding} text (byte {exc.start})") from None
    return text.rstrip("\r\n")


def sniff_delimiter(sample_text: str) -> str:
    """The field delimiter: csv.Sniffer first, then the candidate that splits
    the first lines into the same number of fields most often."""
    lines = sample_text.splitlines()[:50]
    if not lines:
        return ","
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS)
        if dialect.delimiter in DELIMITERS:
            return dialect.delimiter
    except csv.Error:
        pass
    best, best_score = ",", 0
    for candidate in DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=candidate)]
        if not counts or counts[0] < 2:
            continue
        score = sum(1 for c in counts if c == counts[0])
        if score > best_score:
            best, best_score = candidate, score
    return best
