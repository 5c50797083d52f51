"""Turning one chunk's bytes into rows of text.

pandas' C parser reads the common case fast; a chunk it refuses (a row with
more fields than the header) is read again with the csv module, which lets
every good row through and names each bad one by its row number.
"""
from __future__ import annotations

import csv
import io
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
    except UnicodeDecodeError as exc:
        row = first_row + data[: exc.start].count(b"\n")
        raise InputError(
            f"row {row}: bytes that are not valid {encoding} text "
            f"(byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None
    if header is not None:
        text = header + "\n" + body
    else:
        text = body
    try:
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
    except (pd.errors.ParserError, pd.errors.ParserWarning):
        frame, rejected = _parse_leniently(text, delimiter, first_row)
        if frame is None:
            raise
    except pd.errors.EmptyDataError:
        raise InputError("the chunk has no header line") from None
    numbers = np.arange(first_row, first_row + len(frame), dtype=np.int64)
    if rejected:
        numbers = _renumber_around(numbers, rejected, first_row, len(frame))
    return _drop_blank(frame, numbers, rejected)


def _parse_leniently(text: str, delimiter: str, first_row: int):
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    try:
        header = next(reader)
    except StopIteration:
        return None, []
    width = len(header)
    good: list[list[str]] = []
    rejected: list[dict] = []
    row = first_row - 1
    try:
        for record in reader:
            row += 1
            if len(record) > width:
                rejected.append({
                    "row": row,
                    "error": f"row {row} has {len(record)} fields but the header has {width}",
                })
                continue
            good.append(record + [""] * (width - len(record)))
    except csv.Error as exc:
        raise InputError(f"row {row + 1}: the CSV cannot be read ({exc})") from None
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


def _dedupe(names: list[str]) -> list[str]:
    # The same rule pandas uses, so both parsers name columns alike.
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(names):
        name = name if name != "" else f"Unnamed: {i}"
        if name in seen:
            seen[name] += 1
            out.append(f"{name}.{seen[name]}")
        else:
            seen[name] = 0
            out.append(name)
    return out
