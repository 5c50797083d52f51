"""Failure handling through the app's own entry points (Chalice's test client)
on moto, with the stack deployed from infra/template.yaml: DELETE /jobs/<id>,
POST /jobs/<id>/retry, the dead-letter handlers (batches of several records),
the scheduled sweeper; and what the deployed stack promises about expiry:
every item the pipeline writes has `expires_at`, and the bucket expires work,
uploads and results by its lifecycle rules."""
from __future__ import annotations

import json
import time
import uuid

import pytest
from chalice.test import Client

from app import app
from chalicelib.jobs.model import ServiceError
from chalicelib.wiring import get_pipeline
from tests.integration.test_handlers import deliver_upload, drain_queues, post_csv
from tests.support.authed import AuthedClient, api_key_for


@pytest.fixture
def client(moto_stack):
    with Client(app) as c:
        yield AuthedClient(c, api_key_for())


def sqs_event(client, queue: str, bodies: list) -> dict:
    """An SQS event whose records each have their own messageId, as Lambda's do."""
    event = client.events.generate_sqs_event(
        message_bodies=[b if isinstance(b, str) else json.dumps(b) for b in bodies], queue_name=queue)
    for record in event["Records"]:
        record["messageId"] = str(uuid.uuid4())
    return event


def queued(moto_stack, queue: str) -> list[dict]:
    sqs = moto_stack.client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for m in messages:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def started_job(client, moto_stack) -> str:
    job_id = post_csv(client).json_body["job_id"]
    deliver_upload(client, moto_stack, f"uploads/{job_id}/source")
    return job_id


# -- cancel and retry over REST ------------------------------------------------------

def test_delete_cancels_a_running_job_and_removes_its_work_files(client, moto_stack, small_chunks):
    small_chunks(chunk_bytes=40)
    job_id = started_job(client, moto_stack)
    messages = queued(moto_stack, moto_stack.settings.work_queue)
    first = sqs_event(client, moto_stack.settings.work_queue, messages[:1])
    client.lambda_.invoke("handle_work_message", first)
    s3 = moto_stack.client("s3")
    listed = s3.list_objects_v2(Bucket=moto_stack.settings.bucket, Prefix=f"work/{job_id}/")
    assert listed.get("KeyCount", 0) > 0

    resp = client.http.delete(f"/jobs/{job_id}")
    assert resp.status_code == 200, resp.body
    assert resp.json_body["status"] == "cancelled" and resp.json_body["finished_at"]
    listed = s3.list_objects_v2(Bucket=moto_stack.settings.bucket, Prefix=f"work/{job_id}/")
    assert listed.get("KeyCount", 0) == 0

    rest = sqs_event(client, moto_stack.settings.work_queue, messages[1:])
    assert client.lambda_.invoke("handle_work_message", rest).payload == {"batchItemFailures": []}
    job = client.http.get(f"/jobs/{job_id}").json_body
    assert (job["status"], job["progress"]["chunks_done"]) == ("cancelled", 1)
    assert queued(moto_stack, moto_stack.settings.aggregate_queue) == []

    again = client.http.delete(f"/jobs/{job_id}")
    assert again.status_code == 409
    assert again.json_body == {"error": f"job {job_id} is already cancelled; only a job that has not "
                                        "ended can be cancelled", "status": "cancelled"}
    assert client.http.get(f"/jobs/{job_id}/result").status_code == 410


def test_retry_runs_a_failed_jobs_failed_chunks_again(client, moto_stack, small_chunks, monkeypatch):
    small_chunks(chunk_bytes=40)
    job_id = started_job(client, moto_stack)
    pipe = get_pipeline()
    real_read = pipe.blobs.read_range
    gone = {"yes"}

    def read_range(key, start, end):
        if gone and start > len(b"name,age,salary,join_date\n"):  # all but the first chunk, for now
            from chalicelib.jobs.model import InputError
            raise InputError(f"s3 object {key} does not exist (was it deleted?)")
        return real_read(key, start, end)

    monkeypatch.setattr(pipe.blobs, "read_range", read_range)
    drain_queues(client, moto_stack)
    failed = client.http.get(f"/jobs/{job_id}").json_body
    assert failed["status"] == "failed"
    assert "more than options.max_failed_percent allows (0%)" in failed["error"]
    total = failed["progress"]["chunks_total"]

    gone.clear()
    resp = client.http.post(f"/jobs/{job_id}/retry")
    assert resp.status_code == 202, resp.body
    assert resp.json_body["status"] == "processing"
    assert resp.json_body["chunks_retried"] == failed["progress"]["chunks_failed"] == total - 1
    assert client.http.post(f"/jobs/{job_id}/retry").status_code == 409  # it is running again
    assert drain_queues(client, moto_stack) == {"work": total - 1, "aggregate": 1}
    done = client.http.get(f"/jobs/{job_id}").json_body
    assert done["status"] == "completed" and "error" not in done
    assert done["progress"]["chunks_done"] == total and done["progress"]["chunks_failed"] == 0
    assert client.http.get(f"/jobs/{job_id}/result").json_body["row_count"] == 5

    refused = client.http.post(f"/jobs/{job_id}/retry")
    assert refused.status_code == 409
    assert refused.json_body["error"].endswith("completed without failed chunks; there is nothing to retry")


def test_another_tenants_job_cannot_be_cancelled_or_retried(client, moto_stack):
    job_id = post_csv(client).json_body["job_id"]
    with Client(app) as raw:
        stranger = AuthedClient(raw, api_key_for("someone-else"))
        assert stranger.http.delete(f"/jobs/{job_id}").status_code == 404
        assert stranger.http.post(f"/jobs/{job_id}/retry").status_code == 404
    assert client.http.get(f"/jobs/{job_id}").json_body["status"] == "received"


# -- the dead-letter handlers -----------------------------------------------------------

def test_the_work_dlq_handler_fails_given_up_chunks_in_a_batch(client, moto_stack, monkeypatch):
    job_id = started_job(client, moto_stack)
    [message] = queued(moto_stack, moto_stack.settings.work_queue)
    pipe = get_pipeline()
    monkeypatch.setattr(pipe.blobs, "read_range", _raise(ServiceError("S3 failed: SlowDown")))
    for _ in range(5):
        event = sqs_event(client, moto_stack.settings.work_queue, [message])
        reply = client.lambda_.invoke("handle_work_message", event).payload
        assert reply == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}

    # SQS moved it to the DLQ; a batch there also holds a duplicate and a stranger.
    batch = sqs_event(client, moto_stack.settings.work_dlq, [message, message, "not json"])
    assert client.lambda_.invoke("handle_work_dead_letter", batch).payload == {"batchItemFailures": []}
    job = client.http.get(f"/jobs/{job_id}").json_body
    assert job["status"] == "aggregating" and job["progress"]["chunks_failed"] == 1
    drain_queues(client, moto_stack)
    job = client.http.get(f"/jobs/{job_id}").json_body
    assert job["status"] == "failed"
    assert job["error"] == "sales.csv: gave up after 5 deliveries: ServiceError: S3 failed: SlowDown"


def test_the_aggregate_dlq_handler_fails_the_job(client, moto_stack, monkeypatch):
    job_id = started_job(client, moto_stack)
    work = queued(moto_stack, moto_stack.settings.work_queue)
    client.lambda_.invoke("handle_work_message", sqs_event(client, moto_stack.settings.work_queue, work))
    [aggregation] = queued(moto_stack, moto_stack.settings.aggregate_queue)
    from chalicelib.jobs import finish
    monkeypatch.setattr(finish, "write_outputs", _raise(ServiceError("S3 failed: InternalError")))
    event = sqs_event(client, moto_stack.settings.aggregate_queue, [aggregation])
    assert client.lambda_.invoke("handle_aggregate_message", event).payload["batchItemFailures"]

    dead = sqs_event(client, moto_stack.settings.aggregate_dlq, [aggregation, {"job_id": "gone"}])
    assert client.lambda_.invoke("handle_aggregate_dead_letter", dead).payload == {"batchItemFailures": []}
    job = client.http.get(f"/jobs/{job_id}").json_body
    assert job["status"] == "failed"
    assert job["error"] == ("sales.csv: the aggregation was given up after 5 deliveries: "
                            "ServiceError: S3 failed: InternalError")


# -- the sweeper, on its schedule ------------------------------------------------------------

def test_the_scheduled_sweeper_finds_stalled_jobs_through_the_index(client, moto_stack, monkeypatch):
    monkeypatch.setenv("SLUICE_PRESIGN_SECONDS", "1")
    from chalicelib import wiring
    wiring.reset()
    with Client(app) as raw:
        authed = AuthedClient(raw, api_key_for())
        waiting = authed.http.post("/uploads", body=json.dumps({"filename": "late.csv"}).encode(),
                                   headers={"Content-Type": "application/json"}).json_body["job_id"]
        time.sleep(2.5)  # twice the upload link's life, and a little more
        event = raw.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event",
                                             detail={}, resources=["arn:aws:events:rule/sweep"])
        raw.lambda_.invoke("handle_sweep_timer", event)
        job = authed.http.get(f"/jobs/{waiting}").json_body
    assert job["status"] == "failed"
    assert job["error"] == ("late.csv: no file arrived within 2 s of the job's creation "
                            "(its upload link had expired)")
    assert get_pipeline().store.list_open_jobs() == []


# -- expiry ------------------------------------------------------------------------------------

def test_every_item_the_pipeline_writes_expires(client, moto_stack, small_chunks, monkeypatch):
    small_chunks(chunk_bytes=40)
    done = started_job(client, moto_stack)
    drain_queues(client, moto_stack)
    cancelled = started_job(client, moto_stack)
    client.http.delete(f"/jobs/{cancelled}")
    queued(moto_stack, moto_stack.settings.work_queue)
    noted = started_job(client, moto_stack)
    [first, *_] = queued(moto_stack, moto_stack.settings.work_queue)
    pipe = get_pipeline()
    with monkeypatch.context() as m:
        m.setattr(pipe.blobs, "read_range", _raise(ServiceError("S3 failed: SlowDown")))
        event = sqs_event(client, moto_stack.settings.work_queue, [first])
        client.lambda_.invoke("handle_work_message", event)
    pipe.store.put_record(noted, "AGGREGATION", {"last_error": "x"}, pipe.ttl_epoch())
    pipe.connections.add("conn-1", {"tenant": "default"}, pipe.ttl_epoch())
    pipe.connections.subscribe(done, "conn-1", pipe.ttl_epoch())
    for _ in range(3):
        client.http.get(f"/jobs/{done}")  # the throttle's counters

    items = _scan(moto_stack)
    kinds = {(i["PK"]["S"].split("#")[0], i["SK"]["S"].split("#")[0]) for i in items}
    assert {("JOB", "META"), ("JOB", "CHUNK"), ("JOB", "FILE"), ("JOB", "AGGREGATION")} <= kinds
    assert len(kinds) > 5  # keys, connections and counters too
    now = time.time()
    missing = [(i["PK"]["S"], i["SK"]["S"]) for i in items if "expires_at" not in i]
    assert missing == []
    assert all(float(i["expires_at"]["N"]) > now for i in items)
    chunk = next(i for i in items if i["PK"]["S"] == f"JOB#{noted}" and i["SK"]["S"].startswith("CHUNK#"))
    assert chunk["last_error"]["S"] == "ServiceError: S3 failed: SlowDown"


def test_the_bucket_expires_work_uploads_and_results_as_the_stage_says(moto_stack):
    rules = moto_stack.client("s3").get_bucket_lifecycle_configuration(
        Bucket=moto_stack.settings.bucket)["Rules"]
    by_prefix = {r["Filter"]["Prefix"]: r for r in rules}
    settings = moto_stack.settings
    assert {prefix: r["Expiration"]["Days"] for prefix, r in by_prefix.items()} == {
        "work/": settings.work_files_days, "uploads/": settings.upload_files_days,
        "results/": settings.result_files_days, "processed/": settings.result_files_days}
    assert {r["Status"] for r in rules} == {"Enabled"}
    assert by_prefix["uploads/"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def _scan(moto_stack) -> list[dict]:
    ddb = moto_stack.client("dynamodb")
    items, kwargs = [], {"TableName": moto_stack.settings.table}
    while True:
        resp = ddb.scan(**kwargs)
        items += resp["Items"]
        if "LastEvaluatedKey" not in resp:
            return items
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def _raise(exc):
    def fail(*args, **kwargs):
        raise exc
    return fail

