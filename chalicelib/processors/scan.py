"""The scan processor (seed 001): which target codes each document contains.

A chunk is a few documents (ten by default, as seed 001 batches them). Each
document's text is extracted and searched for the target codes as whole
tokens, in any case; the document's status reads as seed 001 words it ("No
Code", "1 Code", "3 Codes"). Every (code, document) match is emitted as a
`match` event (MATCH_FOUND on the WebSocket) with a presigned link to the
document; a document that cannot be read is a row error of its own, never a
failed chunk. The per-row output lists every document, so the report does.
"""
from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..jobs.model import InputError
from ..scan.codes import CodeMatcher, normalise_codes, status_words
from ..scan.extract import DocumentError, extract_text
from .base import ChunkResult, DocumentChunk, Emit, FinishContext, Outcome, Partial, ReportContent, RowColumn
from .option_checks import only_known, whole_number

UNREADABLE = "Unreadable"
MAX_DOCUMENTS_PER_CHUNK = 100
_KNOWN_OPTIONS = {"target_hole_codes", "documents_per_chunk", "document_column", "codes_column",
                  "sheet", "strict"}
_COUNTS = ("documents", "matches", "with_codes", "unreadable", "without_text")


class ScanProcessor:
    name = "scan"
    chunk_kind = "documents"
    #: what its files are, by their first bytes (sources.sniff); others are refused
    input_kinds = ("zip", "csv", "xlsx")
    item_label = "documents"
    row_columns = [
        RowColumn("number", "#", "integer"),
        RowColumn("document", "Document"),
        RowColumn("status", "Status"),
        RowColumn("codes", "Codes"),
        RowColumn("code_count", "Codes found", "integer"),
        RowColumn("kind", "Kind"),
        RowColumn("pages", "Pages", "integer"),
        RowColumn("link", "Link"),
        RowColumn("note", "Note"),
    ]
    options_help = [
        {"name": "target_hole_codes", "type": "list", "default": None,
         "help": "Codes to look for, e.g. HOLE-1, HOLE-2 (or a target_hole_codes column in the manifest)"},
        {"name": "documents_per_chunk", "type": "integer", "default": 10, "advanced": True,
         "help": f"Documents per worker invocation (1-{MAX_DOCUMENTS_PER_CHUNK})"},
        {"name": "document_column", "type": "string", "default": None, "advanced": True,
         "help": "The manifest's column of documents, when it is not named document, file_name or key"},
        {"name": "codes_column", "type": "string", "default": None, "advanced": True,
         "help": "The manifest's column of codes, when it is not named target_hole_codes or hole_code"},
        {"name": "strict", "type": "boolean", "default": False,
         "help": "Fail the job if any document cannot be read"},
    ]
    description = ("Find target codes in a zip of documents (PDF, Word, Excel, text) "
                   "or in the documents a manifest lists")

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        clean = only_known(options, _KNOWN_OPTIONS, self.name)
        if clean.get("target_hole_codes") not in (None, "", []):
            clean["target_hole_codes"] = normalise_codes(clean["target_hole_codes"])
        clean["documents_per_chunk"] = whole_number(clean, "documents_per_chunk", 10, 1,
                                                    MAX_DOCUMENTS_PER_CHUNK)
        for name in ("document_column", "codes_column"):
            if clean.get(name) is not None and not isinstance(clean[name], str):
                raise InputError(f"options.{name} must be a column name, got {clean[name]!r}")
        return clean

    def process(self, chunk: DocumentChunk, emit: Emit) -> ChunkResult:
        targets = tuple(chunk.options["target_hole_codes"])
        matcher = _matcher(targets)
        counts: Counter[str] = Counter()
        by_code: Counter[str] = Counter()
        rows = []
        for offset, name in enumerate(chunk.names):
            number = chunk.first_number + offset
            counts["documents"] += 1
            try:
                extracted = extract_text(name, chunk.read(name))
            except DocumentError as exc:
                counts["unreadable"] += 1
                emit("row_error", {"row": number, "document": name, "error": f"{name}: {exc}"})
                rows.append(_row(number, name, UNREADABLE, [], note=str(exc)))
                continue
            found = matcher.find(extracted.text)
            status = status_words(len(found))
            link = chunk.link(name) if found else ""
            for code in found:
                emit("match", {"hole_code": code, "file_name": name, "status": status,
                               "pdf_link": link, "row": number})
            counts["matches"] += len(found)
            counts["with_codes"] += bool(found)
            counts["without_text"] += not extracted.text.strip()
            by_code.update(found)
            rows.append(_row(number, name, status, found, extracted.kind, extracted.pages, link,
                             extracted.note))
        partial = {**{k: counts[k] for k in _COUNTS}, "by_code": dict(by_code),
                   "targets": len(targets)}
        return ChunkResult(partial=partial,
                           rows=pd.DataFrame(rows, columns=[c.name for c in self.row_columns]))

    def merge(self, left: Partial, right: Partial) -> Partial:
        by_code = Counter(left["by_code"])
        by_code.update(right["by_code"])
        return {**{k: left[k] + right[k] for k in _COUNTS}, "by_code": dict(by_code),
                "targets": max(left["targets"], right["targets"])}

    def finish(self, merged: Partial | None, ctx: FinishContext) -> Outcome:
        if merged is None:
            raise InputError("no document could be scanned")
        documents, unreadable = merged["documents"], merged["unreadable"]
        without = documents - merged["with_codes"] - unreadable
        codes = sorted(merged["by_code"].items(), key=lambda item: (-item[1], item[0]))
        result = {
            "documents": documents, "total_matches": merged["matches"],
            "documents_with_codes": merged["with_codes"], "documents_without_codes": without,
            "unreadable_documents": unreadable, "documents_without_text": merged["without_text"],
            "target_codes": merged["targets"],
            "codes_found": [{"hole_code": code, "documents": count} for code, count in codes],
        }
        totals = {"total_processed": documents, "total_matches": merged["matches"],
                  "documents_with_codes": merged["with_codes"], "unreadable_documents": unreadable}
        report = ReportContent(
            sections=[("Scan", [
                ("documents scanned", documents), ("matches (code in a document)", merged["matches"]),
                ("documents with codes", merged["with_codes"]), ("documents without codes", without),
                ("unreadable documents", unreadable),
                ("documents without text (scanned images need OCR)", merged["without_text"]),
                ("target codes", merged["targets"]), ("codes found", len(codes)),
            ])],
            tables=[("Documents per code", ["Hole code", "Documents"], [list(c) for c in codes])],
        )
        strict = (f"strict mode: {unreadable} document(s) could not be read"
                  if unreadable and ctx.options.get("strict") else None)
        return Outcome(result=result, totals=totals, report=report, strict_failure=strict)


@functools.lru_cache(maxsize=8)
def _matcher(codes: tuple[str, ...]) -> CodeMatcher:
    # A warm worker scans chunk after chunk of one job: compile the codes once.
    return CodeMatcher(list(codes))


def _row(number: int, name: str, status: str, found: list[str], kind: str = "",
         pages: int | None = None, link: str = "", note: str = "") -> dict[str, Any]:
    return {"number": number, "document": name, "status": status, "codes": ", ".join(found),
            "code_count": len(found), "kind": kind, "pages": pages, "link": link, "note": note}
