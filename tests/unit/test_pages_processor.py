"""The pages processor (seed 002) on the whole in-memory pipeline, reading
generated documents for real with Tesseract: NPI pages and percentage exact
in every TIFF compression and in PDFs, batches as seed 002 records them,
unreadable pages as their own errors, and every NPI pushed once."""
from __future__ import annotations

import json
import random

import pytest

from chalicelib import api
from chalicelib.jobs.dispatch import handle_uploaded_object, new_job, store_upload
from chalicelib.jobs.model import InputError, JobStatus
from chalicelib.processors import get_processor
from tests.support.memory_pipeline import drain, memory_pipeline
from tests.support.pages import npi_document, valid_npi

SMALL = {"size": (1000, 700), "font_size": 30}  # quick to OCR, still a clear scan


def _run(data: bytes, filename: str, options: dict | None = None, duplicate: bool = False, **settings):
    pipe = memory_pipeline(**settings)
    job = new_job(pipe, filename, "pages", options or {})
    pipe.connections.subscribe(job.job_id, "conn-1", 0)
    store_upload(pipe, job, data, "application/octet-stream")
    handle_uploaded_object(pipe, job.source_key)
    drain(pipe, duplicate=duplicate, shuffle=1 if duplicate else None)
    return pipe, pipe.store.get_job(job.job_id)


def _result(pipe, job) -> dict:
    return json.loads(pipe.blobs.get(job.result_key))


def _document(page_count: int, npi_pages: dict[int, int], seed: int, **kw):
    rng = random.Random(seed)
    wanted = {page: [valid_npi(rng) for _ in range(count)] for page, count in npi_pages.items()}
    return npi_document(page_count, wanted, rng, **{**SMALL, **kw})


def _found(result: dict) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for npi in result["npis"]:
        found.setdefault(npi["page"], []).append(npi["value"])
    return {page: sorted(values) for page, values in found.items()}


def test_npi_pages_percentage_and_batches_are_exact_and_each_npi_is_pushed_once():
    data, expected = _document(12, {2: 1, 5: 2, 11: 1}, seed=7)
    pipe, job = _run(data, "claims.tiff", {"pages_per_batch": 5}, duplicate=True)
    assert job.status == JobStatus.COMPLETED
    result = _result(pipe, job)
    assert result["npi_pages"] == expected.npi_pages == [2, 5, 11]
    assert result["npi_percentage"] == 25.0  # 3 of 12 pages
    assert _found(result) == {page: sorted(npis) for page, npis in expected.npis.items()}
    scores = {(n["page"], n["value"]): n["score"] for n in result["npis"]}
    assert {k for k, s in scores.items() if s > 0.9} == set(expected.labelled)  # next to "NPI" ranks higher
    assert [b["pages"] for b in result["batches"]] == ["1-5", "6-10", "11-12"]
    assert [b["npi_pages"] for b in result["batches"]] == [[2, 5], [], [11]]
    assert all(b["confidence"] > 80 for b in result["batches"])
    pushed = [m["data"] for m in pipe.live.sent["conn-1"] if m["type"] == "MATCH_FOUND"]
    assert sorted((m["page"], m["value"]) for m in pushed) == sorted(scores)  # once, despite redelivery
    assert job.items_total == 12 and job.rows_done == 12 and job.chunks_total == 3
    progress = job.to_public()["progress"]
    assert (progress["items_total"], progress["items_label"]) == (12, "pages")


def test_get_job_shows_seed_002_records_by_their_names():
    data, _ = _document(7, {3: 1}, seed=2)
    pipe, job = _run(data, "fax.tiff", {"pages_per_batch": 5})
    status, body = api.get_job(pipe, job.job_id, job.tenant)
    assert status == 200
    file = body["file"]
    assert (file["PK"], file["SK"], file["s3Key"]) == (f"FILE#{job.job_id}", "METADATA", job.source_key)
    assert (file["totalBatches"], file["completedBatches"], file["status"]) == (2, 2, "COMPLETED")
    assert (file["npiPages"], file["npiPercentage"]) == ([3], round(100 / 7, 2))
    assert (file["isNpiProcessed"], file["isPdfCreated"]) == (True, False)
    assert isinstance(file["createdAt"], int) and file["updatedAt"] >= file["createdAt"]
    batches = body["batches"]
    assert [(b["SK"], b["batchId"], b["pages"], b["status"], b["npiPages"]) for b in batches] == [
        ("BATCH#1", 1, "1-5", "COMPLETED", [3]), ("BATCH#2", 2, "6-7", "COMPLETED", [])]
    assert all(isinstance(b["confidence"], float) and isinstance(b["processedAt"], int) for b in batches)


@pytest.mark.parametrize("compression", ["raw", "tiff_lzw", "packbits", "group3", "jpeg"])
def test_every_tiff_compression_gives_the_same_answer(compression):
    data, expected = _document(3, {2: 1}, seed=11, compression=compression)
    pipe, job = _run(data, f"{compression}.tiff")
    result = _result(pipe, job)
    assert (result["npi_pages"], result["npi_percentage"]) == ([2], round(100 / 3, 2))
    assert _found(result) == expected.npis


@pytest.mark.parametrize("kind, engine", [("pdf_scanned", "tesseract"), ("pdf_text", "text layer")])
def test_pdfs_are_read_from_their_text_layer_or_by_ocr(kind, engine):
    data, expected = _document(4, {1: 1, 4: 1}, seed=5, kind=kind)
    pipe, job = _run(data, "claims.pdf")
    result = _result(pipe, job)
    assert (result["npi_pages"], result["npi_percentage"]) == ([1, 4], 50.0)
    assert _found(result) == expected.npis
    rows = result["rows"]
    assert {r["engine"] for r in rows} == {engine}
    assert all(r["confidence"] == 100.0 for r in rows) if engine == "text layer" else True


def test_a_page_too_large_to_decode_is_its_own_error_and_still_counts_as_a_page():
    data, _ = _document(6, {1: 1, 6: 1}, seed=3)
    pipe, job = _run(data, "big.tiff", {"pages_per_batch": 5}, max_page_pixels=500_000)
    assert job.status == JobStatus.COMPLETED_WITH_ERRORS
    result = _result(pipe, job)
    assert result["pages_failed"] == 6 and result["npi_pages"] == [] and result["total_pages"] == 6
    assert result["npi_percentage"] == 0.0
    errors = result["errors"]["rows"]
    assert errors[0]["error"] == ("page 1 is 1,000 x 700 pixels (700,000), over the limit of 500,000: "
                                  "too large to decode safely")


def test_a_tiff_that_is_not_one_fails_the_job_with_the_reason():
    pipe, job = _run(b"II*\x00\x08\x00\x00\x00" + b"\xff" * 64, "broken.tiff")
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("broken.tiff: the TIFF")


def test_a_csv_given_to_the_pages_processor_says_what_it_reads():
    pipe, job = _run(b"a,b\n1,2\n", "data.csv")
    assert job.status == JobStatus.FAILED
    assert "the pages processor reads a multi-page TIFF or a PDF" in job.error


@pytest.mark.parametrize("options, words", [
    ({"pages_per_batch": 4}, "from 5 to 15"),
    ({"pages_per_batch": 16}, "from 5 to 15"),
    ({"pdf": "yes"}, "options.pdf must be true or false"),
    ({"detectors": ["ssn"]}, "options.detectors"),
    ({"lang": "fra"}, r"unknown option\(s\) lang"),
])
def test_bad_options_are_refused_when_the_job_is_created(options, words):
    with pytest.raises(InputError, match=words):
        get_processor("pages").validate_options(options)


def test_the_report_lists_every_page():
    import io

    import openpyxl

    data, expected = _document(6, {4: 1}, seed=9)
    pipe, job = _run(data, "claims.tiff")
    book = openpyxl.load_workbook(io.BytesIO(pipe.blobs.get(job.outputs["report"])), read_only=True)
    rows = list(book["Rows"].iter_rows(values_only=True))
    assert rows[0][:5] == ("Page", "Batch", "Read by", "Confidence", "NPIs")
    assert [r[0] for r in rows[1:]] == [1, 2, 3, 4, 5, 6]
    assert rows[4][4] == expected.npis[4][0]



def test_with_options_pdf_the_npi_pages_come_first_then_every_page_unchanged():
    import io

    import pikepdf
    import pypdfium2

    data, expected = _document(6, {2: 1, 5: 1}, seed=4)
    pipe, job = _run(data, "claims.tiff", {"pdf": True})
    assert job.status == JobStatus.COMPLETED and job.outputs["pdf"].endswith("/pdf.pdf")
    pdf_bytes = pipe.blobs.get(job.outputs["pdf"])
    with pikepdf.open(io.BytesIO(pdf_bytes)) as document:
        covers = len(document.pages) - 6
        assert covers >= 1
        # The document's pages are its own images, CCITT G4 as scanned.
        filters = {str(pikepdf.PdfImage(next(iter(p.get_images().values()))).filters[0])
                   for p in list(document.pages)[covers:]}
        assert filters == {"/CCITTFaxDecode"}
    cover = pypdfium2.PdfDocument(pdf_bytes)[0].get_textpage().get_text_range()
    assert all(npi[-4:] in cover for npis in expected.npis.values() for npi in npis)
    status, body = api.get_job(pipe, job.job_id, job.tenant)
    assert body["file"]["isPdfCreated"] is True and body["links"]["pdf"] == f"/jobs/{job.job_id}/pdf"


def test_a_damaged_page_is_its_own_error_and_the_pdf_that_needs_it_says_why():
    import io

    import tifffile

    data, _ = _document(4, {1: 1}, seed=6, compression="tiff_lzw")
    with tifffile.TiffFile(io.BytesIO(data)) as tiff:
        start, size = tiff.pages[2].dataoffsets[0], tiff.pages[2].databytecounts[0]
    damaged = data[:start] + b"\xff" * size + data[start + size:]
    pipe, job = _run(damaged, "claims.tiff", {"pdf": True})
    assert job.status == JobStatus.COMPLETED_WITH_ERRORS and "pdf" not in job.outputs
    result = _result(pipe, job)
    assert result["npi_pages"] == [1] and result["pages_failed"] == 1
    assert result["errors"]["rows"][0]["error"].startswith("page 3 is damaged")
    assert result["output_errors"]["pdf"].startswith("the PDF could not be made:")
    assert "page 3" in result["output_errors"]["pdf"]
