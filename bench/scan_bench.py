"""Benchmark: a scan of generated documents through the local stack, followed
live over the WebSocket, against one process scanning the same documents.

    python -m bench.scan_bench                     # 6,600 documents (seed 001)
    python -m bench.scan_bench --documents 500

The documents (PDF, DOCX, text and CSV, with known codes, near misses and a
few unreadable ones) are zipped and uploaded through POST /uploads; the
script subscribes to the job over the WebSocket before uploading, so it sees
every message, and checks the sequence: every match reported once and only
once, PROGRESS never going back and reading 100 last, COMPLETE with the
right totals and a report link that downloads. The baseline is one process
extracting and matching the same documents with Sluice's own functions.
Figures go to bench/results/scan.json. tests/e2e/test_scan_live.py runs the
same path on a few hundred documents.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from websockets.sync.client import connect

from tests.support.authed import ApiSession

RESULTS = Path(__file__).resolve().parent / "results"
CODES = [f"HOLE-{n}" for n in range(1, 41)]


@dataclass
class LiveScan:
    job_id: str
    seconds: float
    messages: list[dict[str, Any]] = field(default_factory=list)


def live_scan(http: ApiSession, ws_url: str, archive: bytes, codes: list[str],
              timeout: float = 1800, grace: float = 1.0) -> LiveScan:
    """Create the job, follow it over the WebSocket (`ws_url` with its
    one-time ?ticket=), upload the zip, and keep every message for the job until
    COMPLETE or ERROR (and `grace` seconds more, so a match pushed a moment
    after the end would still be seen)."""
    created = http.post(f"{http.api_url}/uploads", timeout=30, json={
        "filename": "documents.zip", "processor": "scan", "options": {"target_hole_codes": codes}})
    created.raise_for_status()
    job_id, upload = created.json()["job_id"], created.json()["upload"]
    messages: list[dict[str, Any]] = []
    with connect(ws_url, open_timeout=10, max_size=2**22) as ws:
        ws.send(json.dumps({"action": "subscribe", "job_id": job_id}))
        messages.append(json.loads(ws.recv(timeout=30)))  # the job as it is now
        started = time.perf_counter()
        posted = requests.post(upload["url"], data=upload["fields"], timeout=600,
                               files={"file": ("documents.zip", archive, "application/zip")})
        posted.raise_for_status()
        deadline, ended_at = started + timeout, None
        while True:
            now = time.perf_counter()
            if ended_at is not None and now > ended_at + grace:
                break
            if now > deadline:
                raise TimeoutError(f"job {job_id}: no COMPLETE after {timeout:.0f} s; "
                                   f"last messages {messages[-3:]}")
            try:
                message = json.loads(ws.recv(timeout=0.25))
            except TimeoutError:
                continue
            if message.get("job_id") == job_id:
                messages.append(message)
                if message["type"] in ("COMPLETE", "ERROR") and ended_at is None:
                    ended_at = time.perf_counter()
                    seconds = ended_at - started
    return LiveScan(job_id=job_id, seconds=seconds, messages=messages)


def check_sequence(scan: LiveScan, expected: dict[str, list[str]]) -> dict[str, Any]:
    """Raise AssertionError unless the messages tell exactly the expected
    story; returns the COMPLETE message."""
    types = [m["type"] for m in scan.messages]
    assert "ERROR" not in types, [m for m in scan.messages if m["type"] == "ERROR"]
    assert types.count("COMPLETE") == 1, Counter(types)
    end = types.index("COMPLETE")
    values = [m["value"] for m in scan.messages if m["type"] == "PROGRESS"]
    assert values == sorted(values), f"PROGRESS went back: {values}"
    last_progress = max(i for i, t in enumerate(types[:end]) if t == "PROGRESS")
    assert scan.messages[last_progress]["value"] == 100
    assert all(t == "MATCH_FOUND" for t in types[last_progress + 1:end])
    found = Counter((m["data"]["file_name"], m["data"]["hole_code"])
                    for m in scan.messages if m["type"] == "MATCH_FOUND")
    wanted = Counter((name, code) for name, codes in expected.items() for code in codes)
    twice = [k for k, n in found.items() if n > 1]
    assert not twice, f"reported more than once: {twice[:5]}"
    assert found == wanted, (f"missing {sorted(wanted - found)[:5]}, "
                             f"unexpected {sorted(found - wanted)[:5]}")
    complete = scan.messages[end]
    assert complete["total_matches"] == sum(wanted.values())
    assert complete["total_processed"] == len(expected)
    return complete


def baseline(documents: list[tuple[str, bytes]], codes: list[str]) -> float:
    """Seconds for one process to extract and match every document."""
    from chalicelib.scan.codes import CodeMatcher
    from chalicelib.scan.extract import DocumentError, extract_text

    started = time.perf_counter()
    matcher = CodeMatcher(codes)
    for name, data in documents:
        try:
            matcher.find(extract_text(name, data).text)
        except DocumentError:
            pass
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=6600)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    from chalicelib import wiring
    from local_cloud.cloud import LAMBDA_ACCESS_KEY, LocalCloud
    from tests.support.documents import make_corpus, zip_bytes

    started = time.perf_counter()
    corpus = make_corpus(args.documents, CODES, seed=1, broken=max(1, args.documents // 200))
    archive = zip_bytes(corpus.documents)
    print(f"{args.documents:,} documents generated in {time.perf_counter() - started:.1f} s "
          f"({len(archive) / 2**20:.1f} MB zipped)", flush=True)
    base = baseline(corpus.documents, CODES)
    print(f"baseline, one process: {base:.1f} s", flush=True)
    expected = {name: codes for name, codes in corpus.expected.items() if name not in corpus.broken}
    with LocalCloud(aws_port=0, api_port=0, ws_port=0, workers=args.workers,
                    log_level=logging.WARNING) as cloud:
        wiring.reset()
        ledger_url = f"{cloud.aws_url}/_sluice/calls"
        requests.delete(ledger_url, timeout=10)
        http = ApiSession(cloud.api_url, cloud.api_key)
        ticket = http.post(f"{cloud.api_url}/live/tickets", timeout=30)
        ticket.raise_for_status()
        scan = live_scan(http, ticket.json()["url"], archive, CODES)
        complete = check_sequence(scan, {**expected, **{name: [] for name in corpus.broken}})
        # What the job's handlers asked of AWS (not the pump's polling, which
        # event source mappings do for free, nor this script's upload).
        calls = Counter()
        for call in requests.get(ledger_url, timeout=10).json()["calls"]:
            if call["actor"] == LAMBDA_ACCESS_KEY:
                calls[call["service"]] += call["count"]
        report = requests.get(complete["download_url"], timeout=120)
        report.raise_for_status()
        zipfile.ZipFile(io.BytesIO(report.content)).testzip()
    figures = {
        "documents": args.documents, "workers": args.workers, "matches": complete["total_matches"],
        "unreadable": len(corpus.broken), "pipeline_seconds": round(scan.seconds, 2),
        "documents_per_second": round(args.documents / scan.seconds, 1),
        "baseline_seconds": round(base, 2), "pipeline_vs_baseline": round(base / scan.seconds, 2),
        "messages": dict(Counter(m["type"] for m in scan.messages)),
        "aws_calls_by_service": dict(calls),
        "aws_calls_per_document": round(sum(calls.values()) / args.documents, 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scan.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(f"{args.documents:,} documents scanned through the local stack in {scan.seconds:.1f} s "
          f"({figures['documents_per_second']} documents/s; one process: {base:.1f} s, ratio "
          f"{figures['pipeline_vs_baseline']}x); every one of {complete['total_matches']:,} matches "
          "reported exactly once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
