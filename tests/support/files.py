"""Input files for tests, made in memory: CSV text in any dialect and encoding,
xlsx workbooks written by openpyxl, damaged copies of both, and the magic
bytes of the kinds Sluice refuses."""
from __future__ import annotations

import datetime as dt
import io
import random
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# The first bytes of the formats that are not tables.
PDF_BYTES = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n"
TIFF_LE_BYTES = b"II*\x00\x08\x00\x00\x00" + bytes(64)
TIFF_BE_BYTES = b"MM\x00*\x00\x00\x00\x08" + bytes(64)
GZIP_BYTES = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(32)
XLS_OLE_BYTES = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(32)
JPEG_BYTES = b"\xff\xd8\xff\xe0" + bytes(32)


def binary_junk(size: int = 4096, seed: int = 7) -> bytes:
    """Random bytes that start with none of the magic numbers."""
    data = bytearray(random.Random(seed).randbytes(size))
    data[0:4] = b"\x00\x01\x02\x03"
    return bytes(data)


def rfc_field(value: Any, delimiter: str = ",", force_quotes: bool = False) -> str:
    """One field as RFC 4180 writes it: quoted when it holds the delimiter, a
    quote, CR or LF (csv.writer forgets a lone CR unless the line terminator
    has one)."""
    text = "" if value is None else str(value)
    if force_quotes or any(c in text for c in (delimiter, '"', "\r", "\n")):
        return '"' + text.replace('"', '""') + '"'
    return text


def rfc_record(row: Sequence[Any], delimiter: str = ",") -> str:
    """A record without its line end. A record of one empty field is written
    as "" so that it is not a blank line."""
    if len(row) == 1 and (row[0] is None or str(row[0]) == ""):
        return '""'
    return delimiter.join(rfc_field(v, delimiter) for v in row)


def csv_text(rows: Iterable[Sequence[Any]], *, delimiter: str = ",", newline: str = "\n",
             trailing_newline: bool = True) -> str:
    """RFC 4180 text, fields quoted only where they must be."""
    text = newline.join(rfc_record(row, delimiter) for row in rows)
    if text and trailing_newline:
        text += newline
    return text


def csv_bytes(rows: Iterable[Sequence[Any]], *, delimiter: str = ",", newline: str = "\n",
              encoding: str = "utf-8", bom: bool = False, trailing_newline: bool = True) -> bytes:
    """CSV bytes; `bom` puts the encoding's byte order mark first (utf-8,
    utf-16-le or utf-16-be)."""
    text = csv_text(rows, delimiter=delimiter, newline=newline, trailing_newline=trailing_newline)
    data = text.encode(encoding)
    if bom:
        marks = {"utf-8": b"\xef\xbb\xbf", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}
        data = marks[encoding] + data
    return data


def xlsx_bytes(rows: Sequence[Sequence[Any]] | None = None, *,
               sheets: Mapping[str, Sequence[Sequence[Any]]] | None = None,
               cells: Mapping[str, Any] | None = None) -> bytes:
    """An xlsx workbook written by openpyxl. `rows` fill the first sheet with
    ws.append (None is an empty cell; [] an empty row); `sheets` makes one
    sheet per name, in order; `cells` sets single cells ("C3": value) of the
    first sheet."""
    import openpyxl

    book = openpyxl.Workbook()
    first = book.active
    if sheets:
        first.title = next(iter(sheets))
        for i, (name, content) in enumerate(sheets.items()):
            ws = first if i == 0 else book.create_sheet(name)
            for row in content:
                ws.append(list(row))
    else:
        first.title = "Sheet1"
        for row in rows or []:
            first.append(list(row))
    for ref, value in (cells or {}).items():
        first[ref] = value
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def with_dimension(xlsx: bytes, ref: str | None) -> bytes:
    """The workbook with every sheet's <dimension ref=...> replaced (None
    removes it), as some writers other than Excel leave it wrong or out."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet"):
                tag = "" if ref is None else f'<dimension ref="{ref}"/>'
                data = re.sub(rb'<dimension ref="[^"]*"\s*/>', tag.encode(), data)
            zout.writestr(item, data)
    return out.getvalue()


def corrupt_member(xlsx: bytes, member: str, at_fraction: float, length: int = 200) -> bytes:
    """The workbook with `length` bytes of one member's compressed data
    scrambled, `at_fraction` of the way into it (the zip directory stays
    intact, so the damage only shows while the member is read)."""
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        info = z.getinfo(member)
    data = bytearray(xlsx)
    # local header: 30 fixed bytes, the name, the extra field
    name_len = int.from_bytes(data[info.header_offset + 26: info.header_offset + 28], "little")
    extra_len = int.from_bytes(data[info.header_offset + 28: info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    pos = start + int(info.compress_size * at_fraction)
    for k in range(pos, min(pos + length, start + info.compress_size)):
        data[k] ^= 0x5A
    return bytes(data)


def plain_zip(files: Mapping[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in (files or {"readme.txt": b"hello", "data/a.bin": bytes(100)}).items():
            z.writestr(name, content)
    return buf.getvalue()


# -- a mixed file for the profile ------------------------------------------------

MISSING_SPELLINGS = ("", "  ", "NA", "N/A", "null", "None", "NaN", "n/a", "NULL")


def mixed_rows(n: int, seed: int = 1) -> tuple[list[str], list[list[str]]]:
    """A header and n rows of text cells mixing every type the profile knows:

    id      int, never missing
    qty     int with missing values and a few invalid ones ("lots", "12b")
    price   float with missing values and invalid ones
    joined  dates in several written forms, some missing, some invalid
    active  booleans (true/false/yes/no, any case), some missing
    name    free text (commas, quotes, unicode, embedded newlines)
    late    int for most of the file; text only in the last 5% of the rows
    score   floats with wildly different magnitudes (hard on float sums)
    empty   always missing
    """
    rng = random.Random(seed)
    header = ["id", "qty", "price", "joined", "active", "name", "late", "score", "empty"]
    forms = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%m/%d/%Y", "%d.%m.%Y", "%b %d, %Y", "%d %B %Y", "%Y/%m/%d"]
    words = ["alpha", "béta", "gamma, delta", 'say "hi"', "line\nbreak", "日本語", "x\r\ny", "Zoë"]
    rows = []
    base = dt.datetime(2020, 1, 1)
    for i in range(n):
        r = rng.random()
        qty = (rng.choice(MISSING_SPELLINGS) if r < 0.05 else
               rng.choice(["lots", "12b"]) if r < 0.07 else str(rng.randint(-500, 5000)))
        r = rng.random()
        price = (rng.choice(MISSING_SPELLINGS) if r < 0.04 else
                 "abc" if r < 0.05 else f"{rng.uniform(0.01, 99999):.2f}")
        r = rng.random()
        if r < 0.03:
            joined = rng.choice(MISSING_SPELLINGS)
        elif r < 0.04:
            joined = "not a date"
        else:
            when = base + dt.timedelta(days=rng.randint(0, 1500), hours=rng.choice([0, 0, 0, 10]))
            form = rng.choice(forms)
            if when.hour and "%H" not in form:
                when = when.replace(hour=0)
            joined = when.strftime(form)
        r = rng.random()
        active = (rng.choice(MISSING_SPELLINGS) if r < 0.05 else
                  rng.choice(["true", "false", "TRUE", "False", "yes", "no", "Yes"]))
        name = rng.choice(words) + str(i)
        late = str(rng.randint(0, 99)) if i < n * 0.95 else rng.choice(["n/a", "unknown", "7", "eight"])
        score = repr(rng.choice([1e15, 1e-9, 3.14159, -2.5e7, 0.1, 123456.789]) * rng.random())
        empty = rng.choice(MISSING_SPELLINGS)
        rows.append([str(i + 1), qty, price, joined, active, name, late, score, empty])
    return header, rows
