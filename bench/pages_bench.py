"""Benchmark: a 200-page scanned TIFF (seed 002) through the local stack,
against one process reading the same pages with the same engine.

    python -m bench.pages_bench                  # 200 pages, CCITT G4, 200 dpi Letter
    python -m bench.pages_bench --pages 50 --workers 2

The TIFF holds valid NPIs on known pages among invalid ones and look-alikes
(tests/support/pages.py). The pipeline run uploads it through POST /uploads
and waits for the job; the baseline decodes each page with Pillow, OCRs it
with Tesseract and runs the NPI detector, one page after another, in this
process. Both must find exactly the NPI pages the document was made with.
Figures go to bench/results/pages.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests

RESULTS = Path(__file__).resolve().parent / "results"


def baseline(path: Path) -> tuple[float, list[int]]:
    """Seconds for one process to read every page, and the NPI pages it found."""
    from PIL import Image

    from chalicelib.detect import detectors_for
    from chalicelib.ocr import engine_for

    engine, detectors = engine_for("tesseract"), detectors_for(["npi"])
    started, found = time.perf_counter(), []
    with Image.open(path) as image:
        for index in range(image.n_frames):
            image.seek(index)
            text = engine.read(image.copy()).text
            if any(d.find(text, index + 1) for d in detectors):
                found.append(index + 1)
    return time.perf_counter() - started, found


def through_the_stack(path: Path, workers: int) -> tuple[float, dict, dict[str, int]]:
    from chalicelib import wiring
    from local_cloud.cloud import LAMBDA_ACCESS_KEY, LocalCloud
    from tests.support.authed import ApiSession
    from tests.support.http_jobs import wait_final

    with LocalCloud(aws_port=0, api_port=0, ws_port=0, workers=workers, log_level=logging.WARNING) as cloud:
        wiring.reset()
        ledger = f"{cloud.aws_url}/_sluice/calls"
        requests.delete(ledger, timeout=10)
        started = time.perf_counter()
        http = ApiSession(cloud.api_url, cloud.api_key)
        created = http.post(f"{cloud.api_url}/uploads", timeout=30,
                            json={"filename": path.name, "processor": "pages"}).json()
        with path.open("rb") as data:
            requests.post(created["upload"]["url"], data=created["upload"]["fields"], timeout=600,
                          files={"file": (path.name, data, "image/tiff")}).raise_for_status()
        job = wait_final(http, created["job_id"], timeout=3600)
        seconds = time.perf_counter() - started
        calls = Counter()
        for call in requests.get(ledger, timeout=10).json()["calls"]:
            if call["actor"] == LAMBDA_ACCESS_KEY:
                calls[call["service"]] += call["count"]
    return seconds, job, dict(calls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    from tests.support.pages import npi_lines, render_page, tiff_file, valid_npi

    rng = random.Random(2)
    npi_pages = {page: [valid_npi(rng)] for page in sorted(rng.sample(range(1, args.pages + 1),
                                                                      k=max(1, args.pages // 7)))}
    pages_lines, expected = npi_lines(args.pages, npi_pages, rng)
    with tempfile.TemporaryDirectory() as tmp:
        path = tiff_file(Path(tmp) / "claims.tiff", (render_page(lines) for lines in pages_lines), "group4")
        size_mb = path.stat().st_size / 2**20
        print(f"{args.pages} pages written ({size_mb:.1f} MB, CCITT G4, 200 dpi), "
              f"NPIs on {len(expected.npi_pages)} of them", flush=True)
        base_seconds, base_found = baseline(path)
        print(f"baseline, one process: {base_seconds:.1f} s", flush=True)
        seconds, job, calls = through_the_stack(path, args.workers)
    assert base_found == expected.npi_pages, f"baseline found {base_found}"
    assert job["status"] == "completed", job
    assert job["file"]["npiPages"] == expected.npi_pages, job["file"]["npiPages"]
    figures = {
        "pages": args.pages, "workers": args.workers, "file_mb": round(size_mb, 1),
        "batches": job["progress"]["chunks_total"], "npi_pages": len(expected.npi_pages),
        "npi_percentage": job["file"]["npiPercentage"],
        "pipeline_seconds": round(seconds, 1), "pages_per_second": round(args.pages / seconds, 2),
        "baseline_seconds": round(base_seconds, 1),
        "baseline_pages_per_second": round(args.pages / base_seconds, 2),
        "pipeline_vs_baseline": round(base_seconds / seconds, 2),
        "aws_calls_by_service": calls, "aws_calls_per_page": round(sum(calls.values()) / args.pages, 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pages.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(f"{args.pages} pages through the local stack in {seconds:.1f} s ({figures['pages_per_second']} "
          f"pages/s; one process {figures['baseline_pages_per_second']} pages/s: ratio "
          f"{figures['pipeline_vs_baseline']}x); NPI pages exactly as made")
    return 0


if __name__ == "__main__":
    sys.exit(main())
