"""Scan manifests: a table (CSV or Excel) that lists the documents to scan,
by S3 key or by their names inside an uploaded zip, and may carry the codes
to look for in a column of its own.

The first row is the header. The documents' column is found by its name
(`document`, `file_name`, `key`... in any case, spaces or underscores), or
named by `options.document_column`; a sheet of one column may use any
header, or none (a first cell that looks like a file name, with a dot or a
slash, is taken for a document). The codes' column (`target_hole_codes`, `hole_code`, `codes`...
or `options.codes_column`) is optional: its cells, each holding one code or
several separated by commas or semicolons, together make the job's target
list when the job's options give none.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..jobs.model import InputError

DOCUMENT_HEADERS = ("document", "documents", "file_name", "filename", "file", "key", "s3_key",
                    "path", "name")
CODE_HEADERS = ("target_hole_codes", "hole_codes", "hole_code", "codes", "code")
#: one job scans at most this many documents (about 10,000 chunks of ten)
MAX_DOCUMENTS = 100_000
_CODE_SEPARATORS = re.compile(r"[,;\n]+")


@dataclass(frozen=True)
class Manifest:
    documents: list[str]
    #: the codes of the manifest's codes column, in order of first mention
    codes: list[str]


def read_manifest(rows: Iterable[tuple[int, Sequence[str]]], document_column: str | None = None,
                  codes_column: str | None = None) -> Manifest:
    """`rows` are (spreadsheet row number, cells), the header first."""
    rows = iter(rows)
    try:
        _, header = next(rows)
    except StopIteration:
        raise InputError("the manifest is empty; it needs a header row and one document per row") from None
    header = [str(cell).strip() for cell in header]
    doc_at = _column(header, document_column, DOCUMENT_HEADERS, "document")
    if doc_at is None:
        if len([h for h in header if h]) != 1:
            raise InputError(
                "the manifest has no column of documents: name one document, file_name or key "
                f"(or set options.document_column); its columns are {_listed(header)}")
        doc_at = next(i for i, h in enumerate(header) if h)
        if "." in header[doc_at] or "/" in header[doc_at]:
            # A bare list of documents: its first cell is one, not a header.
            rows = _prepend((1, header), rows)
    codes_at = _column(header, codes_column, CODE_HEADERS, "codes")
    documents: dict[str, None] = {}
    codes: dict[str, str] = {}
    for number, cells in rows:
        name = cells[doc_at].strip() if doc_at < len(cells) else ""
        if name:
            documents.setdefault(name, None)
            if len(documents) > MAX_DOCUMENTS:
                raise InputError(f"the manifest lists more than {MAX_DOCUMENTS:,} documents "
                                 f"(row {number}); split it into several jobs")
        if codes_at is not None and codes_at < len(cells):
            for code in _CODE_SEPARATORS.split(cells[codes_at]):
                code = code.strip()
                if code:
                    codes.setdefault(code.casefold(), code)
    if not documents:
        raise InputError(f"the manifest's column {header[doc_at]!r} lists no documents")
    return Manifest(documents=list(documents), codes=list(codes.values()))


def _column(header: list[str], chosen: str | None, known: Sequence[str], what: str) -> int | None:
    wanted = [_plain(chosen)] if chosen else list(known)
    plain = [_plain(h) for h in header]
    for name in wanted:
        if name in plain:
            return plain.index(name)
    if chosen:
        raise InputError(f"the manifest has no column {chosen!r} (options.{what}_column); "
                         f"its columns are {_listed(header)}")
    return None


def _plain(name: str) -> str:
    return re.sub(r"[\s_-]+", "_", name.strip().casefold())


def _listed(header: list[str]) -> str:
    return ", ".join(repr(h) for h in header if h) or "(none)"


def _prepend(first, rest):
    yield first
    yield from rest
