"""The pages processor (seed 002): which pages of a multi-page TIFF or PDF
hold National Provider Identifiers, and on what share of the pages.

A chunk is a batch of 5-15 pages (10 by default). Each page's text comes
from its text layer when it has one (a PDF made from text, confidence 100)
or from the OCR engine the stage names (Tesseract locally, Textract on AWS);
the detectors (NPI by default; others plug in) run on that text. A page that
cannot be read (damaged, or too large to decode safely) is a row error of
its own; the rest of the batch goes on. The per-row output lists every page,
so the report does. Each batch keeps seed 002's BATCH#n figures (its NPI
pages and mean confidence) on its chunk record.

At the end: the NPI pages, the NPI percentage (pages with at least one NPI /
all pages x 100), each batch's confidence and, with `options.pdf`, a PDF of
the document with the NPI pages listed in front of its own pages.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from .. import detect
from ..jobs.model import InputError
from ..ocr import OcrFailedError
from ..sources.pages import PageError
from .base import (
    ChunkResult,
    Emit,
    FinishContext,
    Outcome,
    PageChunk,
    Partial,
    ReportContent,
    RowColumn,
    SourceOutput,
)
from .option_checks import only_known, whole_number

PAGES_PER_BATCH = (5, 15)
TEXT_LAYER = "text layer"
_KNOWN_OPTIONS = {"pages_per_batch", "pdf", "detectors", "strict"}


class PagesProcessor:
    name = "pages"
    chunk_kind = "pages"
    #: what its files are, by their first bytes (sources.sniff); others are refused
    input_kinds = ("tiff", "pdf")
    item_label = "pages"
    description = ("Find NPIs (National Provider Identifiers) on every page of a multi-page "
                   "TIFF or PDF, with OCR where a page has no text")
    row_columns = [
        RowColumn("page", "Page", "integer"),
        RowColumn("batch", "Batch", "integer"),
        RowColumn("engine", "Read by"),
        RowColumn("confidence", "Confidence", "number"),
        RowColumn("npis", "NPIs"),
        RowColumn("npi_count", "NPIs found", "integer"),
        RowColumn("characters", "Characters", "integer"),
        RowColumn("note", "Note"),
    ]
    options_help = [
        {"name": "pdf", "type": "boolean", "default": False,
         "help": "Also write a PDF of the document with the NPI pages listed at the front"},
        {"name": "pages_per_batch", "type": "integer", "default": 10, "advanced": True,
         "help": f"Pages per worker invocation ({PAGES_PER_BATCH[0]}-{PAGES_PER_BATCH[1]})"},
        {"name": "detectors", "type": "list", "default": ["npi"], "advanced": True,
         "help": "What to look for on each page (npi)"},
        {"name": "strict", "type": "boolean", "default": False,
         "help": "Fail the job if any page cannot be read"},
    ]

    def job_view(self, job: Any, chunks: list[dict[str, Any]]) -> dict[str, Any]:
        """What GET /jobs/<id> adds to the pipeline's own view: seed 002's."""
        return seed_002_view(job, chunks)

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        clean = only_known(options, _KNOWN_OPTIONS, self.name)
        clean["pages_per_batch"] = whole_number(clean, "pages_per_batch", 10, *PAGES_PER_BATCH,
                                                why=" (seed 002 batches 5-15 pages)")
        for flag in ("pdf", "strict"):
            if not isinstance(clean.get(flag, False), bool):
                raise InputError(f"options.{flag} must be true or false, got {clean[flag]!r}")
        names = clean.get("detectors", ["npi"])
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list) or not names:
            raise InputError(f"options.detectors must be a list such as [\"npi\"], got {names!r}")
        try:
            detect.detectors_for(names)
        except ValueError as exc:
            raise InputError(f"options.detectors: {exc}") from None
        clean["detectors"] = names
        return clean

    def process(self, chunk: PageChunk, emit: Emit) -> ChunkResult:
        detectors = detect.detectors_for(list(chunk.options.get("detectors") or ["npi"]))
        batch = chunk.index + 1
        rows, found, confidences, failed = [], {}, [], 0
        for page in chunk.pages:
            try:
                if page.text_layer is not None:
                    text, confidence, engine = page.text_layer, 100.0, TEXT_LAYER
                else:
                    read = chunk.ocr.read(page.image())
                    text, confidence, engine = read.text, read.confidence, read.engine
            except (PageError, OcrFailedError) as exc:
                failed += 1
                emit("row_error", {"row": page.number, "page": page.number, "error": str(exc)})
                rows.append(_row(page.number, batch, note=str(exc)))
                continue
            confidences.append(confidence)
            findings = _best_per_value(f for d in detectors for f in d.find(text, page.number))
            for finding in findings:
                emit("match", {"row": page.number, "page": page.number, "kind": finding.kind,
                               "value": finding.value, "score": finding.score})
            if findings:
                found[str(page.number)] = [{"kind": f.kind, "value": f.value, "score": f.score}
                                           for f in findings]
            rows.append(_row(page.number, batch, engine, confidence, findings, len(text),
                             "" if text.strip() else "no text found on the page"))
        confidence = round(sum(confidences) / len(confidences), 1) if confidences else None
        pages_range = f"{chunk.first_page}-{chunk.last_page}"
        npi_pages = sorted(int(p) for p in found)
        partial = {"kind": chunk.kind, "pages": len(rows), "failed_pages": failed, "found": found,
                   "batches": {str(batch): {"pages": pages_range, "npi_pages": npi_pages,
                                            "confidence": confidence, "failed_pages": failed}}}
        return ChunkResult(partial=partial,
                           rows=pd.DataFrame(rows, columns=[c.name for c in self.row_columns]),
                           summary={"pages": pages_range, "npi_pages": npi_pages,
                                    "confidence": confidence})

    def merge(self, left: Partial, right: Partial) -> Partial:
        return {"kind": left["kind"], "pages": left["pages"] + right["pages"],
                "failed_pages": left["failed_pages"] + right["failed_pages"],
                "found": {**left["found"], **right["found"]},
                "batches": {**left["batches"], **right["batches"]}}

    def finish(self, merged: Partial | None, ctx: FinishContext) -> Outcome:
        if merged is None:
            raise InputError("no page could be read")
        batches = [{"batch": int(n), **b}
                   for n, b in sorted(merged["batches"].items(), key=lambda item: int(item[0]))]
        # Every page of the document counts, those of a batch that failed too.
        total = ctx.items_total or merged["pages"]
        npi_pages = sorted(int(p) for p in merged["found"])
        percentage = round(100 * len(npi_pages) / total, 2) if total else 0.0
        findings = [{"page": int(p), **f} for p, fs in merged["found"].items() for f in fs]
        findings.sort(key=lambda f: (f["page"], -f["score"]))
        read = [b["confidence"] for b in batches if b["confidence"] is not None]
        result = {
            "file_name": ctx.filename, "total_pages": total,
            "pages_read": merged["pages"] - merged["failed_pages"], "pages_failed": merged["failed_pages"],
            "npi_pages": npi_pages, "npi_percentage": percentage,
            "npis": findings, "mean_confidence": round(sum(read) / len(read), 1) if read else None,
            "batches": batches,
        }
        totals = {"total_pages": total, "npi_pages": npi_pages, "npi_percentage": percentage,
                  "npis_found": len(findings), "pages_failed": merged["failed_pages"]}
        report = ReportContent(
            sections=[("NPIs", [
                ("pages", total), ("pages with an NPI", len(npi_pages)), ("NPI percentage", percentage),
                ("NPIs found", len(findings)), ("pages that could not be read", merged["failed_pages"]),
                ("mean OCR confidence", result["mean_confidence"]),
            ])],
            tables=[("Batches", ["Batch", "Pages", "NPI pages", "Confidence"],
                     [[b["batch"], b["pages"], ", ".join(map(str, b["npi_pages"])), b["confidence"]]
                      for b in batches])],
        )
        outputs = []
        if ctx.options.get("pdf"):
            outputs.append(_pdf_output(merged["kind"], ctx.filename, total, findings, percentage, batches))
        strict = (f"strict mode: {merged['failed_pages']} page(s) could not be read"
                  if merged["failed_pages"] and ctx.options.get("strict") else None)
        return Outcome(result=result, totals=totals, report=report, strict_failure=strict,
                       source_outputs=outputs)


def _row(page: int, batch: int, engine: str = "", confidence: float | None = None,
         findings: list[Any] = (), characters: int | None = None, note: str = "") -> dict[str, Any]:
    return {"page": page, "batch": batch, "engine": engine, "confidence": confidence,
            "npis": ", ".join(f.value for f in findings), "npi_count": len(findings),
            "characters": characters, "note": note}


def _best_per_value(findings) -> list[Any]:
    """One finding per value on a page (detectors may overlap), the best scored,
    in the order they were first found."""
    best: dict[tuple[str, str], Any] = {}
    for finding in findings:
        key = (finding.kind, finding.value)
        if key not in best or finding.score > best[key].score:
            best[key] = finding
    return list(best.values())


def _pdf_output(kind: str, filename: str, total: int, findings: list[dict[str, Any]],
                percentage: float, batches: list[dict[str, Any]]) -> SourceOutput:
    def build(source_path: str, out_path: str) -> None:
        # The PDF libraries load only when a PDF is asked for.
        from ..detect.npi import NEAR_KEYWORD_SCORE
        from ..reports import pdf

        by_page: dict[int, list[pdf.NpiFinding]] = {}
        for finding in findings:
            if finding["kind"] == "npi":
                by_page.setdefault(finding["page"], []).append(pdf.NpiFinding(
                    finding["value"], finding["score"] >= NEAR_KEYWORD_SCORE, finding["score"]))
        summary = pdf.NpiPdfSummary(
            file_name=filename, total_pages=total, npi_percentage=percentage,
            npi_pages=[pdf.NpiPage(page, tuple(found)) for page, found in sorted(by_page.items())],
            batches=[pdf.BatchConfidence(*_first_last(b["pages"]), b["confidence"]) for b in batches])
        try:
            pdf.write_npi_pdf(source_path, kind, out_path, summary)
        except pdf.PdfBuildError as exc:
            raise InputError(f"the PDF could not be made: {exc}") from None

    return SourceOutput("pdf", ".pdf", "application/pdf", build)


def seed_002_view(job: Any, chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The job as seed 002 draws its table: the file's METADATA item and a
    BATCH#n item per batch, with seed 002's names. The pipeline keeps them
    in its own job and chunk records; this is a read-only view of those."""
    done = [c for c in chunks if c.get("summary")]
    if job.totals.get("npi_pages") is not None:
        npi_pages, percentage = job.totals["npi_pages"], job.totals["npi_percentage"]
    else:  # still running: what the batches done so far found
        npi_pages = sorted({p for c in done for p in c["summary"]["npi_pages"]})
        read = sum(_page_count(c["summary"]["pages"]) for c in done)
        percentage = round(100 * len(npi_pages) / read, 2) if read else None
    file = {
        "PK": f"FILE#{job.job_id}", "SK": "METADATA", "s3Key": job.source_key,
        "totalBatches": job.chunks_total, "completedBatches": job.chunks_done,
        "status": job.status.value.upper(), "npiPages": npi_pages, "npiPercentage": percentage,
        "isNpiProcessed": job.status.is_final and "result" in job.outputs,
        "isPdfCreated": "pdf" in job.outputs,
        "createdAt": _epoch(job.created_at), "updatedAt": _epoch(job.updated_at),
    }
    batches = []
    for chunk in sorted(chunks, key=lambda c: c["index"]):
        summary = chunk.get("summary") or {}
        batches.append({
            "PK": f"FILE#{job.job_id}", "SK": f"BATCH#{chunk['index'] + 1}", "batchId": chunk["index"] + 1,
            "pages": summary.get("pages") or f"{chunk.get('first_row')}-{chunk.get('last_row')}",
            "status": _BATCH_STATUS.get(chunk["status"], chunk["status"].upper()),
            "npiPages": summary.get("npi_pages", []), "confidence": summary.get("confidence"),
            "processedAt": _epoch(chunk["settled_at"]) if chunk.get("settled_at") else None,
            **({"error": chunk["error"]} if chunk.get("error") else {}),
        })
    return {"file": file, "batches": batches}


_BATCH_STATUS = {"pending": "PENDING", "done": "COMPLETED", "failed": "FAILED"}


def _first_last(pages: str) -> tuple[int, int]:
    first, _, last = pages.partition("-")
    return int(first), int(last or first)


def _page_count(pages: str) -> int:
    first, last = _first_last(pages)
    return last - first + 1


def _epoch(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())
