"""Benchmark: the profile pipeline through the local cloud against one plain
pandas process, on the same generated CSV.

    python -m bench.profile_bench            # 1,000,000 and 100,000 rows
    python -m bench.profile_bench --rows 200000 --small-rows 20000

Prints, in one run:
- rows per second end to end through the local cloud (presigned upload →
  `completed`) and of the single-process pandas baseline, and their ratio;
- the AWS API calls the app made for the job, by service, and per million rows
  (the local pump's own polling, which AWS's event source mappings do for
  free, is shown apart);
- peak RSS of the processes doing the work for two file sizes 10x apart.
Targets (issue 2): ratio >= 0.5, <= 300 calls per million rows, peak RSS grows
< 50 MB when the file grows 10x. The figures go to bench/results/profile.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
import requests

from bench.generate import write_csv
from chalicelib import wiring
from local_cloud import LocalCloud
from local_cloud.cloud import LAMBDA_ACCESS_KEY, PUMP_ACCESS_KEY
from tests.support.authed import ApiSession

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"
MB = 1024 * 1024


@dataclass
class PipelineRun:
    rows: int
    file_bytes: int
    seconds: float
    chunks: int
    status: str
    app_calls: dict[str, int]
    pump_calls: int
    operations: dict[str, int]
    worker_peak_rss_mb: float
    worker_rss_mb: list[float] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds

    @property
    def app_calls_total(self) -> int:
        return sum(self.app_calls.values())


class RssSampler:
    """Samples the RSS of this process's worker children every 20 ms."""

    def __init__(self) -> None:
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            for child in me.children(recursive=True):
                try:
                    if "resource_tracker" in " ".join(child.cmdline()):
                        continue
                    rss = child.memory_info().rss
                except psutil.Error:
                    continue
                self.peaks[child.pid] = max(self.peaks.get(child.pid, 0), rss)
            self._stop.wait(0.02)


# This script polls job status four times a second; that is not what the
# status throttle is there to measure.
os.environ.setdefault("SLUICE_STATUS_QUERIES_PER_WINDOW", "1000000")


def run_pipeline(path: Path, rows: int, workers: int, processor: str = "profile") -> tuple[PipelineRun, dict]:
    """A fresh local cloud per run, so each size's memory peak is its own."""
    with LocalCloud(aws_port=0, api_port=0, ws_port=0, workers=workers, log_level=logging.WARNING) as cloud:
        wiring.reset()  # the in-process API must build clients for this cloud's endpoint
        api = cloud.api_url
        http = ApiSession(api, cloud.api_key)
        ledger_url = f"{cloud.aws_url}/_sluice/calls"
        with RssSampler() as sampler:
            requests.delete(ledger_url, timeout=10)
            started = time.perf_counter()
            created = http.post(f"{api}/uploads", json={"filename": path.name, "processor": processor},
                                    timeout=30).json()
            upload = created["upload"]
            with path.open("rb") as fh:
                posted = requests.post(upload["url"], data=upload["fields"],
                                       files={"file": (path.name, fh)}, timeout=600)
            posted.raise_for_status()
            job = _wait_final(http, created["job_id"])
            seconds = time.perf_counter() - started
        result = http.get(f"{api}/jobs/{created['job_id']}/result", timeout=60).json()
        calls = requests.get(ledger_url, timeout=10).json()["calls"]
    # Counted: what the job's handlers did. Apart: the pump's polling (AWS's
    # event source mappings poll for free), the API answering the status polls
    # of this script, and the user's own presigned upload.
    app_calls: dict[str, int] = {}
    operations: dict[str, int] = {}
    pump_calls = 0
    for call in calls:
        if call["actor"] == PUMP_ACCESS_KEY:
            pump_calls += call["count"]
        elif call["actor"] == LAMBDA_ACCESS_KEY:
            app_calls[call["service"]] = app_calls.get(call["service"], 0) + call["count"]
            name = f"{call['service']}:{call['operation']}"
            operations[name] = operations.get(name, 0) + call["count"]
    worker_rss = sorted((v / MB for v in sampler.peaks.values()), reverse=True)
    run = PipelineRun(
        rows=rows, file_bytes=path.stat().st_size, seconds=seconds,
        chunks=job["progress"]["chunks_total"], status=job["status"], app_calls=app_calls,
        pump_calls=pump_calls, operations=operations, worker_peak_rss_mb=worker_rss[0] if worker_rss else 0.0,
        worker_rss_mb=[round(v, 1) for v in worker_rss],
    )
    return run, result


def _wait_final(http: ApiSession, job_id: str, timeout: float = 1800) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = http.get(f"{http.api_url}/jobs/{job_id}", timeout=30)
        if resp.status_code == 429:  # throttled, as a well-behaved client waits
            time.sleep(float(resp.headers.get("Retry-After", "1")))
            continue
        job = resp.json()
        if job["status"] in ("completed", "completed_with_errors", "failed", "cancelled"):
            return job
        time.sleep(0.25)
    raise TimeoutError(f"job {job_id} not final after {timeout} s")


def run_baseline(path: Path) -> tuple[float, float, dict]:
    """The plain pandas process, in a child so its time and memory are its own."""
    out = RESULTS / f"baseline_{path.stem}.json"
    proc = subprocess.Popen([sys.executable, "-m", "bench.baseline", str(path), str(out)],
                            cwd=HERE.parent, stdout=subprocess.PIPE, text=True)
    child = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, child.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    stdout = proc.stdout.read()
    if proc.returncode:
        raise RuntimeError(f"baseline failed: {stdout}")
    seconds = json.loads(stdout.strip().splitlines()[-1])["seconds"]
    return seconds, peak / MB, json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)

    big = write_csv(DATA / f"rows_{args.rows}.csv", args.rows)
    small = write_csv(DATA / f"rows_{args.small_rows}.csv", args.small_rows)

    base_seconds, base_rss, base_result = run_baseline(big)
    big_run, big_result = run_pipeline(big, args.rows, args.workers)
    small_run, _ = run_pipeline(small, args.small_rows, args.workers)

    same = big_result == base_result
    ratio = big_run.rows_per_second / (args.rows / base_seconds)
    per_million = big_run.app_calls_total * 1_000_000 / args.rows
    growth = big_run.worker_peak_rss_mb - small_run.worker_peak_rss_mb
    figures = {
        "rows": args.rows, "file_mb": round(big.stat().st_size / MB, 1), "workers": args.workers,
        "baseline_seconds": round(base_seconds, 2),
        "baseline_rows_per_s": round(args.rows / base_seconds),
        "baseline_peak_rss_mb": round(base_rss, 1),
        "pipeline_seconds": round(big_run.seconds, 2),
        "pipeline_rows_per_s": round(big_run.rows_per_second),
        "ratio_pipeline_to_pandas": round(ratio, 2),
        "results_identical": same,
        "app_calls_by_service": big_run.app_calls,
        "app_calls_per_million_rows": round(per_million),
        "pump_polls_not_counted": big_run.pump_calls,
        "chunks": big_run.chunks,
        "worker_peak_rss_mb": {str(args.small_rows): round(small_run.worker_peak_rss_mb, 1),
                               str(args.rows): round(big_run.worker_peak_rss_mb, 1)},
        "worker_peak_rss_growth_mb": round(growth, 1),
        "targets_met": {"ratio >= 0.5": ratio >= 0.5, "calls/M rows <= 300": per_million <= 300,
                        "rss growth < 50 MB": growth < 50, "same result": same},
        "runs": [asdict(big_run), asdict(small_run)],
    }
    (RESULTS / "profile.json").write_text(json.dumps(figures, indent=2))
    print(report(figures, big_run, small_run, args))
    return 0 if all(figures["targets_met"].values()) else 1


def report(f: dict, big: PipelineRun, small: PipelineRun, args) -> str:
    services = ", ".join(f"{k} {v}" for k, v in sorted(big.app_calls.items()))
    rss = f["worker_peak_rss_mb"]
    return "\n".join([
        "",
        f"Sluice profile benchmark: {args.rows:,} rows, {f['file_mb']} MB CSV, {args.workers} workers",
        f"  single-process pandas    {f['baseline_seconds']:8.2f} s {f['baseline_rows_per_s']:>10,} rows/s"
        f"   peak RSS {f['baseline_peak_rss_mb']:.0f} MB",
        f"  local cloud, end to end  {f['pipeline_seconds']:8.2f} s {f['pipeline_rows_per_s']:>10,} rows/s"
        f"   {big.chunks} chunks",
        f"  ratio pipeline/pandas    {f['ratio_pipeline_to_pandas']:.2f}x (target >= 0.5);"
        f" results identical: {f['results_identical']}",
        f"  AWS calls by the job     {big.app_calls_total} ({services})",
        f"                           {f['app_calls_per_million_rows']} per million rows (target <= 300);"
        f" pump polls, not counted: {big.pump_calls}",
        f"  worker peak RSS          {rss[str(args.small_rows)]:.0f} MB at {args.small_rows:,} rows,"
        f" {rss[str(args.rows)]:.0f} MB at {args.rows:,} rows:"
        f" growth {f['worker_peak_rss_growth_mb']:+.0f} MB (target < 50)",
        f"  targets met              {all(f['targets_met'].values())} {f['targets_met']}",
        "",
    ])


if __name__ == "__main__":
    sys.exit(main())
