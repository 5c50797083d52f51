"""The whole app as a user meets it: `python -m local_cloud` in its own
process, driven over real HTTP and with a real S3 client."""
from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time

import openpyxl
import pytest
import requests

from bench.baseline import profile_file
from bench.generate import make_frame
from tests.support.authed import ApiSession
from tests.support.http_jobs import find_job, wait_final

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "customers.csv"
    make_frame(3000, seed=7).to_csv(path, index=False)
    return path


def test_post_a_csv_and_fetch_the_result(local_cloud, sample_csv):
    api = local_cloud.api_url
    resp = local_cloud.http.post(f"{api}/jobs", params={"processor": "profile", "filename": "customers.csv"},
                         data=sample_csv.read_bytes(), headers={"Content-Type": "text/csv"}, timeout=30)
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["job_id"]
    early = local_cloud.http.get(f"{api}/jobs/{job_id}/result", timeout=10)
    assert early.status_code in (200, 409)
    job = wait_final(local_cloud.http, job_id)
    assert job["status"] == "completed", job
    assert job["progress"]["chunks_total"] > 1  # the fixture makes small chunks
    assert job["progress"]["chunks_done"] == job["progress"]["chunks_total"]
    assert job["progress"]["rows_processed"] == 3000
    result = local_cloud.http.get(f"{api}/jobs/{job_id}/result", timeout=10)
    assert result.status_code == 200
    # The distributed result equals the one-process computation of the same file.
    expected = profile_file(sample_csv)
    assert result.json() == expected

    bucket = local_cloud.outputs["BucketName"]
    summary = local_cloud.client("s3").get_object(Bucket=bucket, Key="processed/customers_summary.json")
    assert json.loads(summary["Body"].read()) == expected


def test_presigned_upload_for_a_big_file(local_cloud, sample_csv):
    api = local_cloud.api_url
    resp = local_cloud.http.post(f"{api}/uploads", json={"filename": "big.csv", "processor": "profile"},
                                 timeout=10)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    upload = body["upload"]
    assert upload["url"].startswith(local_cloud.aws_url)
    posted = local_cloud.http.post(upload["url"], data=upload["fields"],
                           files={"file": ("big.csv", sample_csv.read_bytes())}, timeout=30)
    assert posted.status_code in (200, 204), posted.text
    job = wait_final(local_cloud.http, body["job_id"])
    assert job["status"] == "completed"
    assert local_cloud.http.get(f"{api}/jobs/{body['job_id']}/result", timeout=10).json()["row_count"] == 3000


def test_presigned_upload_carries_the_size_range(local_cloud):
    # S3 enforces the policy's content-length-range; moto does not check
    # presigned POST policies, so the test reads the policy S3 will enforce.
    resp = local_cloud.http.post(f"{local_cloud.api_url}/uploads", json={"filename": "e.csv"}, timeout=10)
    upload = resp.json()["upload"]
    policy = json.loads(base64.b64decode(upload["fields"]["policy"]))
    assert ["content-length-range", 1, upload["max_bytes"]] in policy["conditions"]
    assert {"x-amz-meta-job-id": resp.json()["job_id"]} in policy["conditions"]
    assert upload["max_bytes"] == 5 * 1024**3


def test_a_file_dropped_into_uploads_starts_a_job(local_cloud):
    s3 = local_cloud.client("s3")
    bucket = local_cloud.outputs["BucketName"]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["sku", "price", "in_stock"])
    for i in range(1, 51):
        sheet.append([f"SKU-{i}", i * 1.25, i % 2 == 0])
    buf = io.BytesIO()
    book.save(buf)
    s3.put_object(Bucket=bucket, Key="uploads/dropped/stock.xlsx", Body=buf.getvalue())
    job = find_job(local_cloud.http, "stock.xlsx")
    job = wait_final(local_cloud.http, job["job_id"])
    assert job["status"] == "completed" and job["processor"] == "profile"
    result = local_cloud.http.get(f"{local_cloud.api_url}/jobs/{job['job_id']}/result", timeout=10).json()
    assert result["schema"] == {"sku": "string", "price": "float", "in_stock": "bool"}
    assert result["statistics"]["price"]["sum"] == pytest.approx(sum(i * 1.25 for i in range(1, 51)))
    assert result["statistics"]["in_stock"] == {"count": 50, "true": 25, "false": 25}


def test_a_file_that_is_not_what_its_processor_reads_is_refused_or_fails_with_a_reason(local_cloud):
    api = local_cloud.api_url
    # Posted as the body: judged by its bytes at once, before any job is made.
    resp = local_cloud.http.post(f"{api}/jobs", params={"filename": "notes.csv"}, data=b"%PDF-1.4\n%...",
                                 headers={"Content-Type": "application/octet-stream"}, timeout=10)
    assert resp.status_code == 422
    assert resp.json()["error"] == ("the file is a PDF document; the profile processor reads CSV or text "
                                    "or an Excel workbook (.xlsx)")
    # Uploaded to S3 through a presigned POST: the job reads it, and fails saying why.
    created = local_cloud.http.post(f"{api}/uploads", json={"filename": "notes.csv"}, timeout=10).json()
    local_cloud.http.post(created["upload"]["url"], data=created["upload"]["fields"],
                          files={"file": ("notes.csv", b"%PDF-1.4\n%...")}, timeout=30).raise_for_status()
    job = wait_final(local_cloud.http, created["job_id"])
    assert job["status"] == "failed"
    assert job["error"] == "notes.csv: this is a PDF document, not CSV or Excel"
    result = local_cloud.http.get(f"{api}/jobs/{job['job_id']}/result", timeout=10)
    assert result.status_code == 422 and result.json()["error"] == job["error"]


def test_too_big_for_the_api_is_413(local_cloud):
    body = b"a,b\n" + b"1,2\n" * (5 * 1024 * 1024 // 4 + 10)
    resp = local_cloud.http.post(f"{local_cloud.api_url}/jobs", params={"filename": "x.csv"}, data=body,
                         headers={"Content-Type": "text/csv"}, timeout=30)
    assert resp.status_code == 413
    assert resp.json()["next"] == "/uploads"


def test_chalice_local_serves_the_routes_against_the_embedded_aws(local_cloud, tmp_path):
    from tests.e2e.conftest import REPO_ROOT, free_port

    port = free_port()
    env = {**os.environ, "AWS_ENDPOINT_URL": local_cloud.aws_url, "AWS_ACCESS_KEY_ID": "local",
           "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1",
           "SLUICE_BUCKET": local_cloud.outputs["BucketName"],
           "SLUICE_TABLE": local_cloud.outputs["TableName"],
           "SLUICE_WORK_QUEUE": local_cloud.outputs["WorkQueueName"],
           "SLUICE_AGGREGATE_QUEUE": local_cloud.outputs["AggregateQueueName"],
           "SLUICE_DEFAULT_TENANT": "local"}
    log = (tmp_path / "chalice.log").open("wb")
    chalice = os.path.join(os.path.dirname(sys.executable), "chalice")
    proc = subprocess.Popen([chalice, "local", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        # The same key works there: keys live in the embedded AWS's table.
        http = ApiSession(url, local_cloud.api_key)
        deadline = time.monotonic() + 30
        while True:
            try:
                http.get(f"{url}/jobs", timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError((tmp_path / "chalice.log").read_text()) from None
                time.sleep(0.3)
        assert requests.get(f"{url}/jobs", timeout=10).status_code == 401  # no key, no answer
        resp = http.post(f"{url}/jobs", params={"filename": "via-chalice.csv"},
                         data=b"x,y\n1,2\n3,4\n", headers={"Content-Type": "text/csv"}, timeout=10)
        assert resp.status_code == 202, resp.text
        # The upload landed in the embedded AWS, so local_cloud's pump runs it.
        job = wait_final(http, resp.json()["job_id"])
        assert job["status"] == "completed"
        assert http.get(f"{url}/jobs/{job['job_id']}/result", timeout=10).json()["row_count"] == 2
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
