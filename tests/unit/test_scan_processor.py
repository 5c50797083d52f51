"""The scan processor on the whole (in-memory) pipeline: zips, manifests,
matches pushed once each, unreadable documents as their own errors, and the
report listing every document."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import zipfile

import openpyxl
import pytest

from chalicelib.jobs.dispatch import handle_uploaded_object, new_job, store_upload
from chalicelib.jobs.model import ChunkTask, InputError, JobStatus, ServiceError
from chalicelib.jobs.work import run_chunk
from chalicelib.processors import get_processor
from tests.support.documents import make_corpus, pdf_bytes, zip_bytes
from tests.support.memory_pipeline import drain, memory_pipeline, run_file

CODES = ["HOLE-1", "HOLE-2", "HOLE-3"]


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _result(pipe, job):
    return json.loads(pipe.blobs.get(job.result_key))


def _matches(pipe) -> list[dict]:
    return [m for sent in pipe.live.sent.values() for m in sent if m["type"] == "MATCH_FOUND"]


def _scan(data: bytes, filename: str = "docs.zip", options: dict | None = None, subscribe=True,
          duplicate: bool = False, shuffle: int | None = None):
    """Run a scan with one WebSocket connection following the job."""
    pipe = memory_pipeline()
    job = new_job(pipe, filename, "scan", {"target_hole_codes": CODES, **(options or {})})
    if subscribe:
        pipe.connections.subscribe(job.job_id, "conn-1", 0)
    store_upload(pipe, job, data, "application/zip")
    handle_uploaded_object(pipe, job.source_key)
    drain(pipe, shuffle=shuffle, duplicate=duplicate)
    return pipe, pipe.store.get_job(job.job_id)


def test_every_match_is_found_and_pushed_exactly_once_despite_redelivery():
    corpus = make_corpus(60, CODES, seed=3)
    pipe, job = _scan(zip_bytes(corpus.documents), duplicate=True, shuffle=1)
    assert job.status == JobStatus.COMPLETED
    expected = {(code, name) for name, codes in corpus.expected.items() for code in codes}
    pushed = [(m["data"]["hole_code"], m["data"]["file_name"]) for m in _matches(pipe)]
    assert sorted(pushed) == sorted(expected)  # each once, though every chunk ran twice
    result = _result(pipe, job)
    assert result["documents"] == 60 == job.totals["total_processed"]
    assert result["total_matches"] == len(expected) == job.totals["total_matches"]
    assert job.items_total == 60 and job.chunks_total == 6  # ten documents a chunk


def test_a_match_carries_seed_001_fields_and_a_link_to_the_document_alone():
    doc = pdf_bytes(["Drawing 7", "Bores: HOLE-2 and hole-1; not HOLE-12"])
    pipe, job = _scan(_zip({"site/drawing_7.pdf": doc, "other.txt": b"nothing here"}))
    data = [m["data"] for m in _matches(pipe)]
    assert [d["hole_code"] for d in data] == ["HOLE-1", "HOLE-2"]
    assert {d["file_name"] for d in data} == {"site/drawing_7.pdf"}
    assert {d["status"] for d in data} == {"2 Codes"}
    assert {d["row"] for d in data} == {1}  # the document's number, as a row error's
    link = data[0]["pdf_link"]
    key = link.split("memory://", 1)[1].split("?", 1)[0]
    assert key == f"results/{job.job_id}/documents/site/drawing_7.pdf"
    assert pipe.blobs.get(key) == doc


def test_an_unreadable_document_is_its_own_error_and_the_rest_are_scanned():
    files = {"a.txt": b"HOLE-1", "broken.pdf": b"%PDF-1.7\n garbage", "c.txt": b"HOLE-3 HOLE-2"}
    pipe, job = _scan(_zip(files))
    assert job.status == JobStatus.COMPLETED_WITH_ERRORS
    result = _result(pipe, job)
    assert result["unreadable_documents"] == 1 and result["documents"] == 3
    errors = result["errors"]["rows"]
    assert len(errors) == 1 and errors[0]["document"] == "broken.pdf"
    assert errors[0]["error"].startswith("broken.pdf: ")
    rows = {r["document"]: r for r in result["rows"]}
    assert rows["broken.pdf"]["status"] == "Unreadable"
    assert rows["a.txt"]["status"] == "1 Code" and rows["c.txt"]["status"] == "2 Codes"
    assert rows["c.txt"]["codes"] == "HOLE-2, HOLE-3"  # in target order
    row_errors = [m for sent in pipe.live.sent.values() for m in sent if m["type"] == "ROW_ERROR"]
    assert [m["data"]["document"] for m in row_errors] == ["broken.pdf"]


def test_strict_fails_the_job_when_a_document_cannot_be_read():
    pipe, job = _scan(_zip({"a.txt": b"HOLE-1", "b.pdf": b"not a pdf at all"}), options={"strict": True})
    assert job.status == JobStatus.FAILED
    assert "1 document(s) could not be read" in job.error


def test_the_report_lists_every_document_with_its_status_and_codes():
    corpus = make_corpus(25, CODES, seed=5)
    pipe, job = _scan(zip_bytes(corpus.documents))
    book = openpyxl.load_workbook(io.BytesIO(pipe.blobs.get(job.outputs["report"])), read_only=True)
    rows = list(book["Rows"].iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    assert header[:5] == ("#", "Document", "Status", "Codes", "Codes found")
    assert len(body) == 25
    for row in body:
        codes = corpus.expected[row[1]]
        assert row[2] == {0: "No Code", 1: "1 Code"}.get(len(codes), f"{len(codes)} Codes")
        assert (row[3] or "") == ", ".join(codes)
    summary = {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True) if len(r) > 1 and r[0]}
    assert summary["documents read"] == 25


def test_a_zip_with_a_manifest_scans_what_it_lists_with_the_codes_of_its_column():
    manifest = "file_name,hole_code\nplans/a.txt,HOLE-7\nb.txt,HOLE-8; HOLE-1\nmissing.pdf,\n"
    files = {"manifest.csv": manifest.encode(), "plans/a.txt": b"HOLE-7 and HOLE-1",
             "docs/b.txt": b"hole-8", "ignored.txt": b"HOLE-7"}
    pipe = memory_pipeline()
    job = run_file(pipe, _zip(files), filename="batch.zip", processor="scan")
    result = _result(pipe, job)
    rows = {r["document"]: r for r in result["rows"]}
    # b.txt is found by its file name; ignored.txt is not in the manifest.
    assert set(rows) == {"plans/a.txt", "docs/b.txt", "missing.pdf"}
    assert rows["plans/a.txt"]["codes"] == "HOLE-7, HOLE-1"
    assert rows["docs/b.txt"]["codes"] == "HOLE-8"
    assert rows["missing.pdf"]["status"] == "Unreadable"
    assert "not in the zip" in rows["missing.pdf"]["note"]
    assert result["target_codes"] == 3


def test_a_csv_manifest_of_s3_keys():
    pipe = memory_pipeline()
    pipe.blobs.put("documents/x.txt", b"see HOLE-3")
    pipe.blobs.put("documents/y.pdf", pdf_bytes(["HOLE-2"]))
    manifest = (f"key\ns3://{pipe.settings.bucket}/documents/x.txt\ndocuments/y.pdf\n"
                "results/someone-else/report.xlsx\ndocuments/gone.txt\n")
    job = run_file(pipe, manifest.encode(), filename="manifest.csv", processor="scan",
                   options={"target_hole_codes": "HOLE-2, HOLE-3"})
    rows = {r["document"]: r for r in _result(pipe, job)["rows"]}
    assert rows["documents/x.txt"]["status"] == "1 Code"
    assert rows["documents/y.pdf"]["codes"] == "HOLE-2"
    assert "off limits" in rows["results/someone-else/report.xlsx"]["note"]
    assert "no such key" in rows["documents/gone.txt"]["note"]
    # A key's link is the key itself, presigned: nothing is copied.
    assert rows["documents/x.txt"]["link"].startswith("memory://documents/x.txt")


def test_an_excel_manifest_with_a_named_column():
    pipe = memory_pipeline()
    pipe.blobs.put("in/one.txt", b"HOLE-1")
    book = openpyxl.Workbook()
    book.active.append(["Drawing", "Codes wanted"])
    book.active.append(["in/one.txt", "HOLE-1"])
    buffer = io.BytesIO()
    book.save(buffer)
    job = run_file(pipe, buffer.getvalue(), filename="list.xlsx", processor="scan",
                   options={"document_column": "Drawing", "codes_column": "codes wanted"})
    assert job.status == JobStatus.COMPLETED
    assert job.totals["total_matches"] == 1


@pytest.mark.parametrize("data, filename, words", [
    (_zip({"a.txt": b"HOLE-1"}), "a.zip", None),
    (b"document\n", "m.csv", "lists no documents"),
    (_zip({"__MACOSX/._a": b"x", "dir/": b""}), "e.zip", "holds no documents"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "p.png", "a zip of documents or a manifest"),
    (b"title,size\nx,1\n", "m.csv", "no column of documents"),
])
def test_inputs_that_cannot_be_planned_fail_with_a_clear_reason(data, filename, words):
    pipe = memory_pipeline()
    job = new_job(pipe, filename, "scan", {} if words is None else {"target_hole_codes": ["X"]})
    store_upload(pipe, job, data, "application/octet-stream")
    handle_uploaded_object(pipe, job.source_key)
    drain(pipe)
    job = pipe.store.get_job(job.job_id)
    assert job.status == JobStatus.FAILED
    assert (words or "no codes to look for") in job.error


def test_documents_per_chunk_sets_the_chunk_size():
    corpus = make_corpus(23, CODES, seed=1)
    pipe, job = _scan(zip_bytes(corpus.documents), options={"documents_per_chunk": 4})
    assert job.chunks_total == 6 and job.items_total == 23 and job.rows_done == 23


@pytest.mark.parametrize("options, words", [
    ({"documents_per_chunk": 0}, "documents_per_chunk"),
    ({"documents_per_chunk": 101}, "documents_per_chunk"),
    ({"target_hole_codes": [1]}, r"target_hole_codes\[1\] is 1; every code must be text"),
    ({"target_hole_codes": ["HOLE-1", "  ", "--"]}, r"target_hole_codes\[3\] \('--'\) has no letter"),
    ({"colour": "red"}, r"unknown option\(s\) colour for the scan processor"),
])
def test_bad_options_are_refused_when_the_job_is_created(options, words):
    with pytest.raises(InputError, match=words):
        get_processor("scan").validate_options(options)


def test_the_row_file_is_csv_with_every_document():
    corpus = make_corpus(12, CODES, seed=9)
    pipe, job = _scan(zip_bytes(corpus.documents))
    rows = list(csv.DictReader(io.StringIO(pipe.blobs.get(job.outputs["rows"]).decode())))
    assert sorted(r["document"] for r in rows) == sorted(name for name, _ in corpus.documents)


def test_result_rows_keep_whole_numbers_whole_where_a_column_has_gaps():
    files = {"a.pdf": pdf_bytes([], pages=[["HOLE-1"], ["x"]]), "b.txt": b"HOLE-2"}
    pipe, job = _scan(_zip(files))
    rows = {r["document"]: r for r in _result(pipe, job)["rows"]}
    assert rows["a.pdf"]["pages"] == 2 and isinstance(rows["a.pdf"]["pages"], int)
    assert rows["b.txt"]["pages"] is None


class _CountingBlobs:
    """The pipeline's blob store, counting what workers ask of the upload."""

    def __init__(self, blobs, key):
        self._blobs, self._key, self.reads = blobs, key, []

    def __getattr__(self, name):
        return getattr(self._blobs, name)

    def head(self, key):
        assert key != self._key, "a worker looked the zip up"
        return self._blobs.head(key)

    def read_range(self, key, start, end):
        if key == self._key:
            self.reads.append((start, end))
        return self._blobs.read_range(key, start, end)


def test_a_worker_fetches_its_own_members_in_one_read_and_never_the_zip_directory():
    corpus = make_corpus(25, CODES, seed=4)
    archive = zip_bytes(corpus.documents)
    pipe = memory_pipeline()
    job = new_job(pipe, "d.zip", "scan", {"target_hole_codes": CODES})
    store_upload(pipe, job, archive, "application/zip")
    handle_uploaded_object(pipe, job.source_key)  # the dispatcher reads the directory, once
    counting = _CountingBlobs(pipe.blobs, job.source_key)
    pipe = dataclasses.replace(pipe, blobs=counting)
    drain(pipe)
    assert pipe.store.get_job(job.job_id).status == JobStatus.COMPLETED
    assert len(counting.reads) == 3  # three chunks of up to ten neighbours
    # Together the reads cover the members, each byte once, and stop where the directory starts.
    directory = archive.index(b"PK\x01\x02")
    covered = sorted(counting.reads)
    assert covered[0][0] == 0 and covered[-1][1] == directory
    assert all(a[1] == b[0] for a, b in zip(covered, covered[1:], strict=False))


class _FlakyCopies:
    """S3 refusing the first copies of documents out of the zip."""

    def __init__(self, blobs, failures):
        self._blobs, self.failures = blobs, failures

    def __getattr__(self, name):
        return getattr(self._blobs, name)

    def put(self, key, data, *args, **kwargs):
        if "/documents/" in key and self.failures:
            self.failures -= 1
            raise ServiceError("SlowDown: please reduce your request rate")
        return self._blobs.put(key, data, *args, **kwargs)


def test_a_copy_that_fails_fails_the_delivery_and_the_retry_counts_the_chunk_once():
    corpus = make_corpus(10, CODES, seed=8)
    pipe = memory_pipeline()
    job = new_job(pipe, "d.zip", "scan", {"target_hole_codes": CODES})
    pipe.connections.subscribe(job.job_id, "conn-1", 0)
    store_upload(pipe, job, zip_bytes(corpus.documents), "application/zip")
    handle_uploaded_object(pipe, job.source_key)
    pipe = dataclasses.replace(pipe, blobs=_FlakyCopies(pipe.blobs, failures=1))
    [message] = pipe.work_queue.drain()
    with pytest.raises(ServiceError, match="SlowDown"):
        run_chunk(pipe, ChunkTask.from_message(message))
    assert pipe.store.get_job(job.job_id).rows_done == 0 and not _matches(pipe)
    assert run_chunk(pipe, ChunkTask.from_message(message)) == "done"  # the queue's redelivery
    drain(pipe)
    expected = sum(len(codes) for codes in corpus.expected.values())
    assert len(_matches(pipe)) == expected
    for match in _matches(pipe):  # every link opens its document
        key = match["data"]["pdf_link"].split("memory://", 1)[1].split("?", 1)[0]
        assert pipe.blobs.get(key) == dict(corpus.documents)[match["data"]["file_name"]]


def test_the_row_file_is_safe_from_formula_injection_and_keeps_numbers():
    files = {'=HYPERLINK("http://evil","x").txt': b"HOLE-1", "-note.txt": b"HOLE-2 HOLE-3",
             "@sum.txt": b"nothing", "plain.txt": b"HOLE-1"}
    pipe, job = _scan(_zip(files))
    written = list(csv.DictReader(io.StringIO(pipe.blobs.get(job.outputs["rows"]).decode())))
    assert sorted(r["document"] for r in written) == [
        "'-note.txt", "'=HYPERLINK(\"http://evil\",\"x\").txt", "'@sum.txt", "plain.txt"]
    assert {r["document"]: r["code_count"] for r in written}["'-note.txt"] == "2"  # a number stays one
    assert {r["number"] for r in written} == {"1", "2", "3", "4"}
