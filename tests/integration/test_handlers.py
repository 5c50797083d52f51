"""The app's handlers through Chalice's own test client, on moto: REST routes,
the S3 event, and the SQS consumers, with real queue messages."""
from __future__ import annotations

import json
import statistics

import pytest
import requests
from chalice.test import Client

from app import app
from chalicelib.jobs.lifecycle import FILE_RECORD
from chalicelib.jobs.model import ServiceError
from chalicelib.wiring import get_pipeline
from tests.support.authed import AuthedClient, api_key_for

CSV = (
    b"name,age,salary,join_date\n"
    b"ann,25,45000.50,2024-01-15\n"
    b"bob,65,,01/15/2023\n"
    b"\"Smith, Carol\",41,150000,\"Jan 5, 2022\"\n"
    b"dan,33,75000,2020-02-02\n"
    b"eve,29,52000.25,2021-07-30\n"
)


@pytest.fixture
def client(moto_stack):
    with Client(app) as c:
        yield AuthedClient(c, api_key_for())


def drain_queues(client, stack, repeat: int = 1) -> dict[str, int]:
    """Deliver every queued message to its handler, like Lambda's event source
    mapping; `repeat` delivers each work message that many times."""
    sqs = stack.client("sqs")
    counts = {"work": 0, "aggregate": 0}
    for queue, handler, kind in ((stack.settings.work_queue, "handle_work_message", "work"),
                                 (stack.settings.aggregate_queue, "handle_aggregate_message", "aggregate")):
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        while True:
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                break
            for _ in range(repeat if kind == "work" else 1):
                event = client.events.generate_sqs_event(
                    message_bodies=[m["Body"] for m in msgs], queue_name=queue)
                response = client.lambda_.invoke(handler, event)
                assert response.payload == {"batchItemFailures": []}
            for m in msgs:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            counts[kind] += len(msgs)
    return counts


def deliver_upload(client, stack, key: str) -> None:
    event = client.events.generate_s3_event(bucket=stack.settings.bucket, key=key)
    client.lambda_.invoke("handle_object_created", event)


def post_csv(client, body=CSV, query="processor=profile&filename=sales.csv", ctype="text/csv"):
    return client.http.post(f"/jobs?{query}", headers={"Content-Type": ctype}, body=body)


def test_upload_process_and_fetch_the_result(client, moto_stack, small_chunks):
    small_chunks(chunk_bytes=40)
    resp = post_csv(client)
    assert resp.status_code == 202
    created = resp.json_body
    job_id = created["job_id"]
    assert created["status"] == "received"
    assert created["links"] == {"self": f"/jobs/{job_id}", "result": f"/jobs/{job_id}/result",
                                "report": f"/jobs/{job_id}/report"}

    early = client.http.get(f"/jobs/{job_id}/result")
    assert early.status_code == 409 and early.json_body["status"] == "received"

    deliver_upload(client, moto_stack, f"uploads/{job_id}/source")
    status = client.http.get(f"/jobs/{job_id}").json_body
    assert status["status"] == "processing"
    assert status["progress"]["chunks_total"] >= 3
    assert client.http.get(f"/jobs/{job_id}/result").status_code == 409

    counts = drain_queues(client, moto_stack)
    assert counts == {"work": status["progress"]["chunks_total"], "aggregate": 1}

    status = client.http.get(f"/jobs/{job_id}").json_body
    assert status["status"] == "completed"
    assert status["progress"] == {"chunks_total": counts["work"], "chunks_done": counts["work"],
                                  "chunks_failed": 0, "rows_processed": 5, "percent": 100.0}
    assert status["finished_at"] and status["created_at"]

    result = client.http.get(f"/jobs/{job_id}/result").json_body
    assert result["row_count"] == 5
    assert result["schema"] == {"name": "string", "age": "int", "salary": "float", "join_date": "date"}
    ages = [25, 65, 41, 33, 29]
    assert result["statistics"]["age"] == {"min": 25, "max": 65, "avg": 38.6, "count": 5, "sum": 193,
                                           "std": pytest.approx(statistics.stdev(ages), rel=1e-11)}
    assert result["statistics"]["salary"]["count"] == 4
    assert result["statistics"]["join_date"] == {"min": "2020-02-02", "max": "2024-01-15", "count": 5}
    assert result["quality_issues"]["missing_values"] == {"salary": {"count": 1, "percentage": 20.0}}

    s3 = moto_stack.client("s3")
    summary = json.loads(s3.get_object(Bucket=moto_stack.settings.bucket,
                                       Key="processed/sales_summary.json")["Body"].read())
    assert summary == result
    record = get_pipeline().store.get_record(job_id, FILE_RECORD)
    assert record["status"] == "success" and record["file_name"] == "sales.csv"
    assert record["row_count"] == 5 and record["schema"]["age"] == "int"

    listed = client.http.get("/jobs").json_body["jobs"]
    assert [j["job_id"] for j in listed] == [job_id]


def test_redelivered_messages_count_once(client, moto_stack, small_chunks):
    small_chunks(chunk_bytes=40)
    job_id = post_csv(client).json_body["job_id"]
    deliver_upload(client, moto_stack, f"uploads/{job_id}/source")
    deliver_upload(client, moto_stack, f"uploads/{job_id}/source")  # S3 events come twice too
    drain_queues(client, moto_stack, repeat=3)
    status = client.http.get(f"/jobs/{job_id}").json_body
    assert status["status"] == "completed"
    progress = status["progress"]
    assert progress["chunks_done"] == progress["chunks_total"]
    assert progress["rows_processed"] == 5
    assert client.http.get(f"/jobs/{job_id}/result").json_body["row_count"] == 5


def test_dropped_file_starts_a_job(client, moto_stack):
    s3 = moto_stack.client("s3")
    s3.put_object(Bucket=moto_stack.settings.bucket, Key="uploads/drop/sales.csv", Body=CSV)
    deliver_upload(client, moto_stack, "uploads/drop/sales.csv")
    deliver_upload(client, moto_stack, "uploads/drop/sales.csv")
    jobs = client.http.get("/jobs").json_body["jobs"]
    assert len(jobs) == 1
    assert jobs[0]["processor"] == "profile" and jobs[0]["filename"] == "sales.csv"
    drain_queues(client, moto_stack)
    result = client.http.get(f"/jobs/{jobs[0]['job_id']}/result")
    assert result.status_code == 200 and result.json_body["row_count"] == 5


def test_dropped_file_with_metadata_options(client, moto_stack):
    s3 = moto_stack.client("s3")
    body = b"when;flag\n15.01.2024;yes\n16.01.2024;no\n"
    s3.put_object(Bucket=moto_stack.settings.bucket, Key="uploads/semi.txt", Body=body,
                  Metadata={"processor": "profile", "options": json.dumps({"type_threshold": 1})})
    deliver_upload(client, moto_stack, "uploads/semi.txt")
    drain_queues(client, moto_stack)
    job = client.http.get("/jobs").json_body["jobs"][0]
    assert job["options"]["type_threshold"] == 1.0
    result = client.http.get(f"/jobs/{job['job_id']}/result").json_body
    assert result["schema"] == {"when": "date", "flag": "bool"}


def test_dropped_pdf_fails_with_a_reason(client, moto_stack):
    s3 = moto_stack.client("s3")
    s3.put_object(Bucket=moto_stack.settings.bucket, Key="uploads/report.csv", Body=b"%PDF-1.7\n...")
    deliver_upload(client, moto_stack, "uploads/report.csv")
    job = client.http.get("/jobs").json_body["jobs"][0]
    assert job["status"] == "failed"
    assert "PDF" in job["error"] and "report.csv" in job["error"]
    result = client.http.get(f"/jobs/{job['job_id']}/result")
    assert result.status_code == 422 and "PDF" in result.json_body["error"]
    record = get_pipeline().store.get_record(job["job_id"], FILE_RECORD)
    assert record["status"] == "error" and "PDF" in record["error_message"]


def test_header_only_upload_fails_clearly(client, moto_stack):
    job_id = post_csv(client, body=b"a,b,c\n").json_body["job_id"]
    deliver_upload(client, moto_stack, f"uploads/{job_id}/source")
    job = client.http.get(f"/jobs/{job_id}").json_body
    assert job["status"] == "failed"
    assert job["error"] == "sales.csv: the file has a header but no data rows"


def test_body_over_the_limit_is_413_pointing_to_uploads(client, monkeypatch):
    from chalicelib import wiring

    monkeypatch.setenv("SLUICE_API_MAX_BODY_BYTES", "100")
    wiring.reset()
    resp = post_csv(client, body=b"a,b\n" + b"1,2\n" * 50)
    assert resp.status_code == 413
    assert "/uploads" in resp.json_body["error"] and resp.json_body["next"] == "/uploads"
    assert client.http.get("/jobs").json_body["jobs"] == []


@pytest.mark.parametrize("query, message", [
    ("processor=profile", "filename is required"),
    ("processor=nope&filename=a.csv", "unknown processor 'nope'"),
    ("filename=a.csv&options=[1]", "must be a JSON object"),
    ("filename=a.csv&options=" + json.dumps({"type_threshold": 7}), "type_threshold"),
])
def test_bad_requests_say_what_is_wrong(client, query, message):
    resp = post_csv(client, query=query)
    assert resp.status_code == 400
    assert message in resp.json_body["error"]


def test_unknown_job_is_404(client):
    assert client.http.get("/jobs/nope").status_code == 404
    assert client.http.get("/jobs/nope/result").status_code == 404


def test_xlsx_upload_by_octet_stream(client, moto_stack):
    import io

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["item", "qty"])
    for i in range(1, 8):
        sheet.append([f"item{i}", i * 10])
    buf = io.BytesIO()
    book.save(buf)
    job_id = post_csv(client, body=buf.getvalue(), query="processor=profile&filename=stock.xlsx",
                      ctype="application/octet-stream").json_body["job_id"]
    deliver_upload(client, moto_stack, f"uploads/{job_id}/source")
    drain_queues(client, moto_stack)
    result = client.http.get(f"/jobs/{job_id}/result").json_body
    assert result["row_count"] == 7
    assert result["statistics"]["qty"]["sum"] == 280


def test_presigned_upload_starts_a_job(client, moto_stack):
    resp = client.http.post("/uploads", headers={"Content-Type": "application/json"},
                            body=json.dumps({"filename": "big.csv", "processor": "profile",
                                             "options": {"dayfirst": True}}))
    assert resp.status_code == 201
    body = resp.json_body
    upload = body["upload"]
    assert upload["fields"]["key"] == f"uploads/{body['job_id']}/source"
    assert upload["fields"]["x-amz-meta-job-id"] == body["job_id"]
    posted = requests.post(upload["url"], data=upload["fields"],
                           files={"file": ("big.csv", b"d,n\n15/01/2024,1\n16/01/2024,2\n")}, timeout=10)
    assert posted.status_code in (200, 204), posted.text
    deliver_upload(client, moto_stack, upload["fields"]["key"])
    drain_queues(client, moto_stack)
    result = client.http.get(f"/jobs/{body['job_id']}/result").json_body
    assert result["statistics"]["d"] == {"min": "2024-01-15", "max": "2024-01-16", "count": 2}


def test_a_failing_message_is_reported_alone(client, moto_stack, monkeypatch):
    job_id = post_csv(client).json_body["job_id"]
    deliver_upload(client, moto_stack, f"uploads/{job_id}/source")
    sqs = moto_stack.client("sqs")
    url = sqs.get_queue_url(QueueName=moto_stack.settings.work_queue)["QueueUrl"]
    good = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"][0]["Body"]
    throttled = json.loads(good)
    throttled["source"]["key"] = "uploads/throttled/object.csv"
    # AWS itself is the boundary we cannot run: S3 throttles reads of one key.
    pipe = get_pipeline()
    real_read = pipe.blobs.read_range

    def read_range(key, start, end):
        if key == "uploads/throttled/object.csv":
            raise ServiceError("S3 failed: SlowDown")
        return real_read(key, start, end)

    monkeypatch.setattr(pipe.blobs, "read_range", read_range)
    event = client.events.generate_sqs_event(
        message_bodies=[json.dumps(throttled), "not json", good], queue_name=moto_stack.settings.work_queue)
    for n, record in enumerate(event["Records"]):
        record["messageId"] = f"m{n}"
    # The throttled one comes first: once the job aggregates, a chunk of it is not even started.
    response = client.lambda_.invoke("handle_work_message", event)
    assert response.payload == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert client.http.get(f"/jobs/{job_id}").json_body["status"] == "aggregating"


def test_a_chunk_whose_file_is_gone_fails_instead_of_retrying(client, moto_stack):
    job_id = post_csv(client).json_body["job_id"]
    deliver_upload(client, moto_stack, f"uploads/{job_id}/source")
    key = f"uploads/{job_id}/source"
    moto_stack.client("s3").delete_object(Bucket=moto_stack.settings.bucket, Key=key)
    drain_queues(client, moto_stack)
    job = client.http.get(f"/jobs/{job_id}").json_body
    assert job["status"] == "failed"
    assert job["error"] == f"sales.csv: s3 object uploads/{job_id}/source does not exist (was it deleted?)"


@pytest.mark.parametrize("ctype", ["image/tiff", "application/pdf"])
def test_a_scan_posted_as_itself_is_read_page_by_page(client, moto_stack, ctype):
    import random

    from tests.support.pages import npi_document, valid_npi

    rng = random.Random(12)
    kind, name = ("tiff", "fax.tiff") if ctype == "image/tiff" else ("pdf_scanned", "fax.pdf")
    data, expected = npi_document(3, {2: [valid_npi(rng)]}, rng, kind=kind, size=(1000, 700), font_size=30)
    created = post_csv(client, body=data, query=f"processor=pages&filename={name}", ctype=ctype)
    assert created.status_code == 202, created.body
    job_id = created.json_body["job_id"]
    deliver_upload(client, moto_stack, f"uploads/{job_id}/source")
    drain_queues(client, moto_stack)
    job = client.http.get(f"/jobs/{job_id}").json_body
    assert job["status"] == "completed"
    assert (job["file"]["npiPages"], job["file"]["npiPercentage"]) == ([2], round(100 / 3, 2))
    assert [b["status"] for b in job["batches"]] == ["COMPLETED"]


@pytest.mark.parametrize("processor, body, ctype, words", [
    ("profile", b"%PDF-1.7\n%...", "text/csv",
     "the file is a PDF document; the profile processor reads CSV or text or an Excel workbook (.xlsx)"),
    ("pages", b"name,age\nann,3\n", "image/tiff",
     "the file is CSV or text; the pages processor reads a TIFF image or a PDF document"),
    ("scan", b"\x89PNG\r\n\x1a\n" + b"\0" * 32, "application/zip",
     "the file is a PNG image; the scan processor"),
])
def test_a_body_is_judged_by_its_bytes_not_its_name_or_type(client, processor, body, ctype, words):
    answer = post_csv(client, body=body, query=f"processor={processor}&filename=looks-fine.csv", ctype=ctype)
    assert answer.status_code == 422 and answer.json_body["error"].startswith(words)
    assert client.http.get("/jobs").json_body["jobs"] == []  # refused before any job was made
