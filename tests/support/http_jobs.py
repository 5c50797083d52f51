"""Following jobs over the REST API, as a client script would."""
from __future__ import annotations

import time

import requests

FINAL = {"completed", "completed_with_errors", "failed", "cancelled"}


def wait_final(api_url: str, job_id: str, timeout: float = 90) -> dict:
    """The job once final, with the statuses seen on the way."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        job = requests.get(f"{api_url}/jobs/{job_id}", timeout=10).json()
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in FINAL:
            job["statuses_seen"] = seen
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not final after {timeout} s; statuses seen {seen}")


def find_job(api_url: str, filename: str, timeout: float = 30) -> dict:
    """The newest job for `filename` (a file dropped into uploads/ has no
    job id until the bucket's event has made one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in requests.get(f"{api_url}/jobs", timeout=10).json()["jobs"]:
            if job["filename"] == filename:
                return job
        time.sleep(0.2)
    raise AssertionError(f"no job for {filename} after {timeout} s")
