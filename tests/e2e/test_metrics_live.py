"""GET /metrics on the local stack shows what the workers measured: the
figures grow by exactly the rows, chunks and jobs the test ran, match the EMF
lines the worker processes printed, and belong to the caller's tenant only.
The workers' own log lines are JSON that names the work they are about."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from bench.generate import make_frame
from chalicelib.adapters.dynamodb_keys import DynamoApiKeyStore
from chalicelib.auth import issue_key
from tests.support.authed import ApiSession
from tests.support.http_jobs import wait_final

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _figures(http: ApiSession) -> dict:
    answer = http.get(f"{http.api_url}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _stat(figures: dict, name: str, stat: str = "Sum", processor: str | None = None) -> float:
    metrics = figures["by_processor"].get(processor, {}) if processor else figures["metrics"]
    return metrics.get(name, {}).get(stat, 0)


def _start(http: ApiSession, processor: str, filename: str, data: bytes) -> str:
    answer = http.post(f"{http.api_url}/jobs", params={"processor": processor, "filename": filename},
                       data=data, headers={"Content-Type": "text/csv"}, timeout=30)
    assert answer.status_code == 202, answer.text
    return answer.json()["job_id"]


def _worker_lines(log: str) -> list[dict]:
    """The JSON lines in local_cloud's output: the workers' logs and metric records."""
    lines = []
    for text in log.splitlines():
        if text.startswith("{"):
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                continue  # a line another process's output cut through
    return lines


def test_metrics_add_up_to_the_jobs_run_for_the_callers_tenant_only(local_cloud, tmp_path):
    http = local_cloud.http
    before = _figures(http)
    assert (before["source"], before["namespace"], before["tenant"]) == ("local", "Sluice", "local")

    customers = tmp_path / "customers.csv"
    make_frame(2500, seed=11).to_csv(customers, index=False)
    started = [_start(http, "profile", "customers.csv", customers.read_bytes()),
               _start(http, "profile", "sales.csv", (EXAMPLES / "sales.csv").read_bytes()),
               _start(http, "carbon", "activities.csv", (EXAMPLES / "activities.csv").read_bytes())]
    jobs = [wait_final(http, job_id) for job_id in started]
    assert {job["status"] for job in jobs} <= {"completed", "completed_with_errors"}, jobs
    assert jobs[0]["progress"]["chunks_total"] > 1  # the fixture makes small chunks

    # A job's ending is counted from the jobs table's stream, a moment after its status is final.
    deadline = time.monotonic() + 30
    after = _figures(http)
    while _stat(after, "JobsCompleted") - _stat(before, "JobsCompleted") < len(jobs):
        assert time.monotonic() < deadline, after
        time.sleep(0.3)
        after = _figures(http)

    def grew(name: str, stat: str = "Sum", processor: str | None = None) -> float:
        return _stat(after, name, stat, processor) - _stat(before, name, stat, processor)

    progress = [job["progress"] for job in jobs]
    assert grew("JobsCompleted") == 3 and grew("JobsFailed") == 0
    assert grew("JobDuration", "SampleCount") == 3
    assert grew("ChunkRows") == sum(p["rows_processed"] for p in progress)
    assert grew("ChunkRows", processor="profile") == sum(p["rows_processed"] for p in progress[:2])
    assert grew("ChunkRows", processor="carbon") == progress[2]["rows_processed"]
    assert grew("ChunksProcessed") == sum(p["chunks_done"] for p in progress)
    assert grew("ChunksFailed") == 0
    assert grew("ChunkDuration", "SampleCount") >= sum(p["chunks_total"] for p in progress)
    # Every chunk came off the work queue: each record knows how long its message waited.
    assert grew("QueueLag", "SampleCount") == grew("ChunkDuration", "SampleCount")
    assert after["metrics"]["QueueLag"]["Unit"] == "Milliseconds"

    # The same figures as the EMF lines the worker processes printed (what CloudWatch reads).
    printed = [line for line in _worker_lines(local_cloud.log())
               if "_aws" in line and line.get("job_id") in started]
    assert sum(line.get("ChunkRows", 0) for line in printed) == grew("ChunkRows")
    assert sum(line.get("JobsCompleted", 0) for line in printed) == 3

    # Another tenant sees none of it; without a key there is no answer.
    store = DynamoApiKeyStore(local_cloud.client("dynamodb"), local_cloud.outputs["TableName"])
    other_key, _ = issue_key(store, "metrics-other", "metrics test", int(time.time()), days=1)
    other = _figures(ApiSession(local_cloud.api_url, other_key))
    assert other["tenant"] == "metrics-other" and other["metrics"] == {}
    assert requests.get(f"{local_cloud.api_url}/metrics", timeout=10).status_code == 401


def test_the_workers_log_json_lines_that_name_their_work(local_cloud):
    http = local_cloud.http
    job_id = _start(http, "profile", "sales.csv", (EXAMPLES / "sales.csv").read_bytes())
    assert wait_final(http, job_id)["status"] == "completed"
    deadline = time.monotonic() + 30
    while True:
        logged = [line for line in _worker_lines(local_cloud.log())
                  if "_aws" not in line and line.get("job_id") == job_id]
        if logged or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    # The stream handler announces the ending: one of the lines every job leaves.
    [final] = [line for line in logged if line["message"] == "job final: completed"]
    assert final["logger"] == "chalicelib.notify.final_status" and final["level"] == "INFO"
    assert {"timestamp", "chunk", "processor", "tenant", "request_id"} <= set(final)
    assert final["function"].endswith("handle_job_change")
    # The key the jobs were posted with appears in no worker line.
    assert local_cloud.api_key not in json.dumps(_worker_lines(local_cloud.log()))
