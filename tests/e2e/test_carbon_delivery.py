"""Seed 000 end to end: a carbon job over the shipped example file, in the
real local cloud, delivered every way a client can take it: the result, the
Excel report (bytes and presigned link), the row file, one message on the
results queue, and a signed callback that is retried after a failure."""
from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import openpyxl
import pytest

from chalicelib.notify.callbacks import EVENT_ID_HEADER, SIGNATURE_HEADER, verify
from local_cloud.cloud import LOCAL_DEFAULTS
from tests.support.callback_receiver import CallbackReceiver
from tests.support.http_jobs import wait_final

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "activities.csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SECRET = LOCAL_DEFAULTS["SLUICE_CALLBACK_SECRET"].encode()


def _results_message(cloud, job_id: str, timeout: float = 30) -> dict:
    sqs = cloud.client("sqs")
    url = sqs.get_queue_url(QueueName=cloud.outputs["ResultsQueueName"])["QueueUrl"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1).get("Messages", []):
            body = json.loads(message["Body"])
            if body.get("job_id") == job_id:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                return body
            # Another test's message: let it become visible again for its owner.
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                          VisibilityTimeout=0)
    raise AssertionError(f"no results-queue message for {job_id} in {timeout} s")


@pytest.fixture(scope="module")
def carbon_job(local_cloud):
    """The example file, posted with a callback whose first delivery fails."""
    with CallbackReceiver() as receiver:
        receiver.answer_first(1, 503)
        resp = local_cloud.http.post(
            f"{local_cloud.api_url}/jobs",
            params={"processor": "carbon", "filename": "activities.csv",
                    "callback_url": f"{receiver.url}/hooks/sluice"},
            data=EXAMPLE.read_bytes(), headers={"Content-Type": "text/csv"}, timeout=30)
        assert resp.status_code == 202, resp.text
        job = wait_final(local_cloud.http, resp.json()["job_id"])
        # The first attempt is answered 503; the retry comes about 5 s later.
        calls = receiver.wait_for(2, timeout=60)
    return job, calls


def test_the_example_completes_with_totals_on_the_job(carbon_job):
    job, _ = carbon_job
    assert job["status"] == "completed", job
    assert job["totals"]["rows_calculated"] == 17 and job["totals"]["rows_rejected"] == 0
    assert job["totals"]["kg_co2e"] > 0
    assert set(job["links"]) == {"self", "result", "report", "rows"}


def test_the_result_has_totals_and_every_row(local_cloud, carbon_job):
    job, _ = carbon_job
    result = local_cloud.http.get(f"{local_cloud.api_url}/jobs/{job['job_id']}/result", timeout=10).json()
    assert result["totals"]["kg_co2e"] == job["totals"]["kg_co2e"]
    assert [r["row"] for r in result["rows"]] == list(range(2, 19))
    assert result["rows"][0]["kg_co2e"] == pytest.approx(2588.375)  # 12,500 kWh x 0.20707


def test_the_report_comes_as_bytes_or_as_a_presigned_link(local_cloud, carbon_job):
    job, _ = carbon_job
    url = f"{local_cloud.api_url}/jobs/{job['job_id']}/report"
    direct = local_cloud.http.get(url, headers={"Accept": XLSX}, timeout=30)
    assert direct.status_code == 200
    assert direct.headers["Content-Type"] == XLSX
    linked = local_cloud.http.get(url, allow_redirects=False, timeout=30)
    assert linked.status_code == 302
    via_s3 = local_cloud.http.get(linked.headers["Location"], timeout=30)
    assert via_s3.status_code == 200 and via_s3.content == direct.content
    book = openpyxl.load_workbook(io.BytesIO(direct.content))
    assert book.sheetnames == ["Summary", "Rows", "Errors"]
    assert book["Rows"].max_row == 18  # header + 17 rows


def test_the_row_file_has_every_row(local_cloud, carbon_job):
    job, _ = carbon_job
    resp = local_cloud.http.get(f"{local_cloud.api_url}/jobs/{job['job_id']}/rows",
                        headers={"Accept": "text/csv"}, timeout=30)
    assert resp.status_code == 200
    rows = list(csv.DictReader(io.StringIO(resp.content.decode())))
    assert len(rows) == 17 and rows[0]["activity"] == "electricity"


def test_one_message_lands_on_the_results_queue(local_cloud, carbon_job):
    job, _ = carbon_job
    message = _results_message(local_cloud, job["job_id"])
    assert message["type"] == "job.finished"
    assert message["status"] == "completed"
    assert message["totals"] == job["totals"]
    assert message["links"]["report"] == f"/jobs/{job['job_id']}/report"
    assert message["outputs"]["report"].startswith("s3://")


def test_the_callback_is_signed_and_retried_after_a_failure(carbon_job):
    job, calls = carbon_job
    first, second = calls
    assert (first.answered, second.answered) == (503, 200)
    for call in calls:
        assert call.method == "POST" and call.path == "/hooks/sluice"
        assert call.headers["content-type"] == "application/json"
        assert verify(SECRET, call.body, call.headers[SIGNATURE_HEADER.lower()])
        assert not verify(b"another secret", call.body, call.headers[SIGNATURE_HEADER.lower()])
    assert first.body == second.body
    body = second.json()
    assert body["job_id"] == job["job_id"] and body["status"] == "completed"
    assert second.headers[EVENT_ID_HEADER.lower()] == body["event_id"]
    assert body["totals"] == job["totals"]
