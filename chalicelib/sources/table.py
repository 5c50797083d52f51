"""Turning one chunk's bytes into rows of text.

pandas' C parser reads the common case fast; a chunk it refuses (a row with
more fields than the header) is read again with the csv module, which lets
every good row through and names each bad one by its row number.
"""
from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..jobs.model import InputError


@dataclass
class ParsedRows:
    frame: pd.DataFrame
    row_numbers: pd.Series
    rejected: list[dict] = field(default_factory=list)


def parse_csv_chunk(data: bytes, encoding: str, delimiter: str, header: str | None,
                    first_row: int) -> ParsedRows:
    """Rows of a CSV chunk. `header` is prepended when the chunk lacks it;
    `first_row` is the spreadsheet row number of the chunk's first record.
    Rows with no value at all (blank lines) are dropped but keep their number."""
    try:
        body = data.decode(encoding)
        undecodable = False
    except UnicodeDecodeError:
        # Keep the bad bytes as lone surrogates; the careful path rejects
        # exactly the rows that hold them and keeps every other row.
        body = data.decode(encoding, errors="surrogateescape")
        undecodable = True
    if header is not None:
        text = header + "\n" + body
    else:
        text = body
    try:
        if undecodable:
            raise pd.errors.ParserError("bytes that are not valid text")
        if "\x00" in text:
            raise pd.errors.ParserError("NUL bytes")
        with warnings.catch_warnings():
            # pandas only warns when a row has more fields than the header and
            # drops the extra ones; such a chunk takes the careful path.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
                na_filter=False, skip_blank_lines=False, quotechar='"', engine="c",
                index_col=False,
            )
        rejected: list[dict] = []
        # Name the columns as the careful path does, so that every chunk of
        # a file names them alike whichever path it took.
        names = _dedupe(_first_record(text, delimiter))
        if len(names) == len(frame.columns):
            frame.columns = names
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        frame, rejected = _parse_leniently(text, delimiter, first_row, encoding)
        if frame is None:
            raise InputError(f"the CSV cannot be read ({exc})") from None
    except pd.errors.EmptyDataError:
        raise InputError("the chunk has no header line") from None
    numbers = np.arange(first_row, first_row + len(frame), dtype=np.int64)
    if rejected:
        numbers = _renumber_around(numbers, rejected, first_row, len(frame))
    return _drop_blank(frame, numbers, rejected)


# Appended to the text the csv module reads: a record of its own when the
# text ends between records, the end of the last field when a quoted field
# never closes (the csv module would quietly read the rest into that field).
_END = "\ufdd0sluice-end\ufdd0"
# What decoding with surrogateescape makes of a byte that is not valid text.
_BAD_BYTE = re.compile("[\udc80-\udcff]")


def _parse_leniently(text: str, delimiter: str, first_row: int, encoding: str = "utf-8"):
    """Every good row, and as rejected ones the rows with too many fields,
    with bytes that are not text in the encoding, or with NUL bytes.

    A record whose quoted field never closes is rejected too, naming the row
    where the quote opens; when the chunk has no other row with a value, the
    chunk fails with that message."""
    tail = "" if text.endswith(("\n", "\r")) else "\n"
    reader = csv.reader(io.StringIO(text + tail + _END, newline=""), delimiter=delimiter, strict=False)
    try:
        header = next(reader)
    except StopIteration:
        return None, []
    if header and header[-1].endswith(_END):
        return None, []
    width = len(header)
    good: list[list[str]] = []
    rejected: list[dict] = []
    row = first_row - 1
    unclosed = False
    try:
        for record in reader:
            if record == [_END]:
                break
            row += 1
            if record and record[-1].endswith(_END):
                unclosed = True
                break
            if len(record) > width:
                rejected.append({
                    "row": row,
                    "error": f"row {row} has {len(record)} fields but the header has {width}",
                })
                continue
            joined = "".join(record)
            if "\x00" in joined:
                rejected.append({
                    "row": row,
                    "error": f"row {row} holds a NUL byte (0x00), which text never holds: the file "
                             "may be damaged here",
                })
                continue
            bad = _BAD_BYTE.search(joined)
            if bad:
                rejected.append({
                    "row": row,
                    "error": f"row {row} has bytes that are not valid {encoding} text "
                             f"(byte 0x{ord(bad.group()) - 0xDC00:02x}); save the file as UTF-8",
                })
                continue
            good.append(record + [""] * (width - len(record)))
    except csv.Error as exc:
        raise InputError(f"row {row + 1}: the CSV cannot be read ({exc})") from None
    if unclosed:
        error = (f"row {row}: a quoted field starts here but its closing quote (\") is missing, "
                 "so this row and every line after it could not be read")
        if not any(any(cell for cell in record) for record in good):
            raise InputError(error)
        rejected.append({"row": row, "error": error})
    frame = pd.DataFrame(good, columns=_dedupe(header), dtype=object)
    return frame, rejected


def _renumber_around(numbers, rejected, first_row, count):
    """Row numbers of the good rows, skipping the rejected ones."""
    skipped = {r["row"] for r in rejected}
    out = []
    row = first_row
    while len(out) < count:
        if row not in skipped:
            out.append(row)
        row += 1
    return np.asarray(out, dtype=np.int64)


def _drop_blank(frame: pd.DataFrame, numbers: np.ndarray, rejected: list[dict]) -> ParsedRows:
    if len(frame.columns):
        blank = (frame.fillna("").astype(str) == "").all(axis=1).to_numpy()
        if blank.any():
            frame = frame[~blank].reset_index(drop=True)
            numbers = numbers[~blank]
    return ParsedRows(frame=frame, row_numbers=pd.Series(numbers), rejected=rejected)


def _first_record(text: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False))
    except (StopIteration, csv.Error):
        return []


def _dedupe(names: list[str]) -> list[str]:
    """Unique column names: an empty name is "Unnamed: <position>", a repeated
    one gets ".1", ".2"... (skipping any name the header already has)."""
    names = [name if name != "" else f"Unnamed: {i}" for i, name in enumerate(names)]
    reserved = set(names)
    taken: set[str] = set()
    out = []
    for name in names:
        if name in taken:
            k = 1
            while f"{name}.{k}" in taken or f"{name}.{k}" in reserved:
                k += 1
            name = f"{name}.{k}"
        taken.add(name)
        out.append(name)
    return out
