"""Following jobs over the REST API, as a client script would, with a session
that sends the caller's API key (tests.support.authed.ApiSession)."""
from __future__ import annotations

import time

from tests.support.authed import ApiSession

FINAL = {"completed", "completed_with_errors", "failed", "cancelled"}


def wait_final(http: ApiSession, job_id: str, timeout: float = 90) -> dict:
    """The job once final, with the statuses seen on the way."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        job = http.get(f"{http.api_url}/jobs/{job_id}", timeout=10).json()
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in FINAL:
            job["statuses_seen"] = seen
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not final after {timeout} s; statuses seen {seen}")


def find_job(http: ApiSession, filename: str, timeout: float = 30) -> dict:
    """The newest job for `filename` (a file dropped into uploads/ has no
    job id until the bucket's event has made one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in http.get(f"{http.api_url}/jobs", timeout=10).json()["jobs"]:
            if job["filename"] == filename:
                return job
        time.sleep(0.2)
    raise AssertionError(f"no job for {filename} after {timeout} s")
