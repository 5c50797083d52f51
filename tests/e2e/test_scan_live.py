"""Seed 001 end to end: scans started and followed over a real WebSocket
against the local stack (`python -m local_cloud`), documents checked by real
PDF and DOCX libraries, links and reports downloaded over HTTP."""
from __future__ import annotations

import base64
import io
import json
import time

import openpyxl
import pytest
from websockets.sync.client import connect

from bench.scan_bench import CODES, LiveScan, check_sequence, live_scan
from tests.support.documents import make_corpus, zip_bytes

pytestmark = pytest.mark.e2e


def _until_end(ws, job_id: str, timeout: float = 120, grace: float = 1.0) -> list[dict]:
    messages, deadline, ended = [], time.monotonic() + timeout, None
    while ended is None or time.monotonic() < ended + grace:
        assert time.monotonic() < deadline, f"no COMPLETE within {timeout} s: {messages[-3:]}"
        try:
            message = json.loads(ws.recv(timeout=0.25))
        except TimeoutError:
            continue
        messages.append(message)
        if message.get("job_id") == job_id and message["type"] in ("COMPLETE", "ERROR") and ended is None:
            ended = time.monotonic()
    return messages


def test_start_scan_as_seed_001_sends_it(local_cloud):
    # API Gateway takes frames up to 128 KB, base64 and all: a small zip.
    # Larger files go through POST /uploads and `subscribe` (the next test).
    corpus = make_corpus(14, ["HOLE-1", "HOLE-2", "HOLE-3"], seed=11, broken=1)
    archive = zip_bytes(corpus.documents)
    assert len(base64.b64encode(archive)) < 120 * 1024
    with connect(local_cloud.ws_signed_in, open_timeout=10) as ws:
        ws.send(json.dumps({"action": "start_scan", "token": "ignored", "file_name": "drawings.zip",
                            "file_content": base64.b64encode(archive).decode(),
                            "target_hole_codes": ["HOLE-1", "HOLE-2", "HOLE-3"],
                            "options": {"documents_per_chunk": 4}}))
        started = json.loads(ws.recv(timeout=30))
        assert started["type"] == "STARTED" and started["message"] == "Processing started"
        job_id = started["job_id"]
        messages = _until_end(ws, job_id)
    complete = check_sequence(LiveScan(job_id, 0.0, [started, *messages]), corpus.expected)
    assert complete["message"] == "Processing completed with errors"  # the broken document
    matches = [m["data"] for m in messages if m["type"] == "MATCH_FOUND"]
    documents = dict(corpus.documents)
    for match in matches[:5]:
        assert match["status"] in ("1 Code", "2 Codes", "3 Codes")
        opened = local_cloud.http.get(match["pdf_link"], timeout=30)
        assert opened.status_code == 200 and opened.content == documents[match["file_name"]]
    report = local_cloud.http.get(complete["download_url"], timeout=30)
    book = openpyxl.load_workbook(io.BytesIO(report.content), read_only=True)
    listed = {row[1]: row[2] for row in book["Rows"].iter_rows(min_row=2, values_only=True)}
    assert set(listed) == set(documents)
    assert [listed[name] for name in corpus.broken] == ["Unreadable"] * len(corpus.broken)


def test_a_few_hundred_documents_through_the_benchmark_path(local_cloud):
    # The same path bench/scan_bench.py drives with 6,600 documents.
    corpus = make_corpus(300, CODES, seed=2, broken=2)
    scan = live_scan(local_cloud.http, local_cloud.ws_signed_in, zip_bytes(corpus.documents), CODES,
                     timeout=300)
    complete = check_sequence(scan, corpus.expected)
    assert complete["total_processed"] == 300
    progress = [m for m in scan.messages if m["type"] == "PROGRESS"]
    assert progress[-1]["processed"] == progress[-1]["total"] == 300
    # Throttled to SLUICE_LIVE_PROGRESS_PER_SECOND (4) per job, in one-second
    # windows, plus the answer to subscribe and the final 100.
    assert len(progress) <= 4 * (int(scan.seconds) + 2) + 2
    job = local_cloud.http.get(f"{local_cloud.api_url}/jobs/{scan.job_id}", timeout=10).json()
    assert job["totals"]["total_matches"] == complete["total_matches"]
    assert job["progress"]["items_total"] == 300
