"""The event pump against moto's real server, with a tiny Chalice app of its own.

The app below is written to a temporary directory and imported only by the
pool's worker processes, exactly as local_cloud imports Sluice's app. Its
handlers write what they saw to a journal directory (one file per call, so
concurrent workers never share a file); the tests read the journal and the
queues. Queues use a 1 s visibility timeout so redelivery takes a second.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path

import pytest
from chalice import Chalice

from local_cloud import events
from local_cloud.aws_server import AwsClients, EmbeddedAws, client_environment
from local_cloud.lambda_pool import AppLoadError, LambdaPool
from local_cloud.pump import EventPump, PumpSettings
from local_cloud.sources import S3Source, ScheduleSource, SqsSource, StreamSource, describe_app

MAX_RECEIVES = 3

TEST_APP = '''
import json
import os
import time
import uuid
from pathlib import Path

from chalice import Chalice

app = Chalice(app_name="pumptest")
JOURNAL = Path(os.environ["PUMP_TEST_JOURNAL"])


def note(handler, **entry):
    entry.update(handler=handler, pid=os.getpid(), at=time.time_ns())
    path = JOURNAL / f"{handler}-{uuid.uuid4().hex}.json"
    path.with_suffix(".tmp").write_text(json.dumps(entry))
    path.with_suffix(".tmp").rename(path)


def first_time(marker):
    path = JOURNAL / f"marker-{marker}"
    if path.exists():
        return False
    path.write_text("")
    return True


@app.on_sqs_message(queue=os.environ["PUMP_TEST_BATCH_QUEUE"], batch_size=10)
def handle_batch(event):
    failures = []
    for record in event:
        raw = record.to_dict()
        body = json.loads(record.body)
        note("handle_batch", id=body["id"], message_id=raw["messageId"],
             receive_count=raw["attributes"]["ApproximateReceiveCount"],
             event_source=raw["eventSource"], arn=raw["eventSourceARN"],
             function_name=record.context.function_name,
             remaining_ms=record.context.get_remaining_time_in_millis())
        if body.get("fail_first") and raw["attributes"]["ApproximateReceiveCount"] == "1":
            failures.append({"itemIdentifier": raw["messageId"]})
    return {"batchItemFailures": failures}


@app.on_sqs_message(queue=os.environ["PUMP_TEST_RAISE_QUEUE"], batch_size=1)
def handle_raise(event):
    for record in event:
        note("handle_raise", id=json.loads(record.body)["id"])
    raise RuntimeError("this message never succeeds")


@app.on_sqs_message(queue=os.environ["PUMP_TEST_SLOW_QUEUE"], batch_size=1)
def handle_slow(event):
    started = time.time()
    time.sleep(1.0)
    for record in event:
        note("handle_slow", id=json.loads(record.body)["id"], started=started, ended=time.time())


@app.on_s3_event(bucket=os.environ["PUMP_TEST_BUCKET"], prefix="incoming/", suffix=".csv")
def handle_upload(event):
    note("handle_upload", bucket=event.bucket, key=event.key,
         event_name=event.to_dict()["Records"][0]["eventName"])
    if "fail" in event.key:
        raise ValueError("cannot read " + event.key)


@app.on_dynamodb_record(stream_arn=os.environ["PUMP_TEST_STREAM_ARN"], batch_size=10)
def handle_change(event):
    for record in event:
        key = record.keys["PK"]["S"]
        note("handle_change", key=key, event_name=record.event_name,
             new_image=record.new_image, table=record.table_name)
        if key.startswith("fail-once") and first_time(key):
            raise RuntimeError("first delivery of " + key + " fails")
'''


class PumpWorld:
    """The moto server, the resources the test app listens to, and the journal."""

    def __init__(self, clients: AwsClients, names: dict[str, str], journal: Path):
        self.clients = clients
        self.names = names
        self.journal_dir = journal

    def journal(self, handler: str) -> list[dict]:
        entries = [json.loads(p.read_text()) for p in self.journal_dir.glob(f"{handler}-*.json")]
        return sorted(entries, key=lambda e: e["at"])

    def seen(self, handler: str, entry_id: str) -> list[dict]:
        return [e for e in self.journal(handler) if e.get("id") == entry_id or e.get("key") == entry_id]

    def send(self, queue: str, **body) -> str:
        sqs = self.clients("sqs")
        url = sqs.get_queue_url(QueueName=self.names[queue])["QueueUrl"]
        return sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))["MessageId"]

    def queue_count(self, queue: str) -> int:
        sqs = self.clients("sqs")
        url = sqs.get_queue_url(QueueName=self.names[queue])["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    aws = EmbeddedAws(port=0)
    url = aws.start()
    clients = AwsClients(url)
    stage = f"p{uuid.uuid4().hex[:8]}"
    names = _create_resources(clients, stage)
    app_dir = tmp_path_factory.mktemp("pump_app")
    (app_dir / "app.py").write_text(TEST_APP)
    journal = tmp_path_factory.mktemp("journal")
    environment = {
        **client_environment(url),
        "PUMP_TEST_JOURNAL": str(journal),
        "PUMP_TEST_BATCH_QUEUE": names["batch"],
        "PUMP_TEST_RAISE_QUEUE": names["raise"],
        "PUMP_TEST_SLOW_QUEUE": names["slow"],
        "PUMP_TEST_BUCKET": names["bucket"],
        "PUMP_TEST_STREAM_ARN": names["stream_arn"],
    }
    pool = LambdaPool(app_dir, environment, workers=2, local_stage=stage, log_level=logging.WARNING)
    pump = EventPump(
        pool,
        clients,
        stage=stage,
        settings=PumpSettings(
            async_retry_delays_s=(0.2, 0.2),
            stream_poll_interval_s=0.1,
            stream_retry_backoff_s=(0.2, 1.0),
        ),
    )
    try:
        pool.start()
        pump.start()
        yield PumpWorld(clients, names, journal)
    finally:
        pump.stop()
        pool.stop()
        aws.stop()


def _create_resources(clients, stage: str) -> dict[str, str]:
    sqs = clients("sqs")
    names = {
        "batch": f"{stage}-batch",
        "raise": f"{stage}-raise",
        "raise_dlq": f"{stage}-raise-dlq",
        "slow": f"{stage}-slow",
        "bucket": f"{stage}-bucket",
        "table": f"{stage}-table",
    }
    dlq_url = sqs.create_queue(QueueName=names["raise_dlq"])["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    sqs.create_queue(QueueName=names["batch"], Attributes={"VisibilityTimeout": "1"})
    sqs.create_queue(QueueName=names["slow"], Attributes={"VisibilityTimeout": "30"})
    sqs.create_queue(
        QueueName=names["raise"],
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES}),
        },
    )
    clients("s3").create_bucket(Bucket=names["bucket"])
    table = clients("dynamodb").create_table(
        TableName=names["table"],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    names["stream_arn"] = table["TableDescription"]["LatestStreamArn"]
    return names


# --- SQS --------------------------------------------------------------------------

def test_successful_messages_are_deleted_and_reported_failures_redelivered(world):
    run = uuid.uuid4().hex[:6]
    ok_ids = [f"ok-{run}-{i}" for i in range(4)]
    for entry_id in ok_ids:
        world.send("batch", id=entry_id)
    world.send("batch", id=f"retry-{run}", fail_first=True)

    retried = wait_until(lambda: len(world.seen("handle_batch", f"retry-{run}")) >= 2 and
                         world.seen("handle_batch", f"retry-{run}"))
    assert [e["receive_count"] for e in retried[:2]] == ["1", "2"]
    wait_until(lambda: world.queue_count("batch") == 0)
    time.sleep(1.5)  # past the visibility timeout: nothing deleted comes back
    for entry_id in ok_ids:
        assert len(world.seen("handle_batch", entry_id)) == 1, entry_id
    assert len(world.seen("handle_batch", f"retry-{run}")) == 2


def test_sqs_records_and_context_look_like_lambdas(world):
    run = uuid.uuid4().hex[:6]
    message_id = world.send("batch", id=f"shape-{run}")
    (entry,) = wait_until(lambda: world.seen("handle_batch", f"shape-{run}"))
    assert entry["message_id"] == message_id
    assert entry["event_source"] == "aws:sqs"
    assert entry["arn"].endswith(f":{world.names['batch']}")
    assert entry["function_name"].startswith("pumptest-") and entry["function_name"].endswith("-handle_batch")
    assert 0 < entry["remaining_ms"] <= 60_000


def test_a_message_that_always_fails_ends_in_the_dlq_after_max_receives(world):
    run = uuid.uuid4().hex[:6]
    world.send("raise", id=f"poison-{run}")

    sqs = world.clients("sqs")
    dlq_url = sqs.get_queue_url(QueueName=world.names["raise_dlq"])["QueueUrl"]

    def in_dlq():
        messages = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages", [])
        return [m for m in messages if json.loads(m["Body"])["id"] == f"poison-{run}"]

    assert wait_until(in_dlq, timeout=20)
    assert len(world.seen("handle_raise", f"poison-{run}")) == MAX_RECEIVES
    assert world.queue_count("raise") == 0


def test_handlers_run_in_parallel_worker_processes(world):
    run = uuid.uuid4().hex[:6]
    world.send("slow", id=f"a-{run}")
    world.send("slow", id=f"b-{run}")
    (a,) = wait_until(lambda: world.seen("handle_slow", f"a-{run}"))
    (b,) = wait_until(lambda: world.seen("handle_slow", f"b-{run}"))
    assert a["pid"] != b["pid"]
    assert a["started"] < b["ended"] and b["started"] < a["ended"], "the two calls did not overlap"


# --- S3 ---------------------------------------------------------------------------

def test_s3_put_under_the_prefix_invokes_the_handler_with_the_key(world):
    s3 = world.clients("s3")
    run = uuid.uuid4().hex[:6]
    key = f"incoming/{run} sales.csv"
    s3.put_object(Bucket=world.names["bucket"], Key=f"other/{run}.csv", Body=b"a")
    s3.put_object(Bucket=world.names["bucket"], Key=f"incoming/{run}.txt", Body=b"a")
    s3.put_object(Bucket=world.names["bucket"], Key=key, Body=b"a,b\n1,2\n")

    (entry,) = wait_until(lambda: world.seen("handle_upload", key))
    assert entry["bucket"] == world.names["bucket"]
    assert entry["event_name"] == "ObjectCreated:Put"
    time.sleep(1.0)
    keys = [e["key"] for e in world.journal("handle_upload")]
    assert f"other/{run}.csv" not in keys
    assert f"incoming/{run}.txt" not in keys


def test_a_failing_s3_handler_is_retried_twice_then_dropped(world):
    s3 = world.clients("s3")
    key = f"incoming/fail-{uuid.uuid4().hex[:6]}.csv"
    s3.put_object(Bucket=world.names["bucket"], Key=key, Body=b"x")
    wait_until(lambda: len(world.seen("handle_upload", key)) >= 3)
    time.sleep(1.0)
    assert len(world.seen("handle_upload", key)) == 3


# --- DynamoDB streams -------------------------------------------------------------

def test_stream_records_are_delivered_in_order_and_a_failed_batch_retried(world):
    ddb = world.clients("dynamodb")
    run = uuid.uuid4().hex[:6]
    table = world.names["table"]
    ddb.put_item(TableName=table, Item={"PK": {"S": f"fail-once-{run}"}, "n": {"N": "1"}})
    ddb.put_item(TableName=table, Item={"PK": {"S": f"after-{run}"}, "n": {"N": "2"}})
    ddb.update_item(
        TableName=table,
        Key={"PK": {"S": f"after-{run}"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "3"}},
    )

    def changes_of_after():
        return [e for e in world.journal("handle_change") if e["key"] == f"after-{run}"]

    wait_until(lambda: len(changes_of_after()) >= 2)
    failed = [e for e in world.journal("handle_change") if e["key"] == f"fail-once-{run}"]
    assert len(failed) == 2, "the failed batch was not delivered again"
    after = changes_of_after()
    assert [e["event_name"] for e in after] == ["INSERT", "MODIFY"]
    assert after[-1]["new_image"] == {"PK": {"S": f"after-{run}"}, "n": {"N": "3"}}
    assert after[0]["table"] == table


# --- pure parts: discovery and Lambda's reading of replies ------------------------

def test_describe_app_reads_every_supported_event_source():
    app = Chalice(app_name="described")

    @app.on_sqs_message(queue="q", batch_size=7, maximum_concurrency=3)
    def on_q(event):
        pass

    @app.on_sqs_message(queue_arn="arn:aws:sqs:us-east-1:123456789012:by-arn")
    def on_arn(event):
        pass

    @app.on_s3_event(bucket="b", prefix="uploads/")
    def on_upload(event):
        pass

    @app.on_dynamodb_record(stream_arn="arn:stream", starting_position="TRIM_HORIZON")
    def on_change(event):
        pass

    @app.schedule("rate(1 hour)")
    def hourly(event):
        pass

    config = {"lambda_timeout": 30, "stages": {"dev": {"lambda_functions": {"on_q": {"lambda_timeout": 90}}}}}
    description = describe_app(app, config, chalice_stage="dev", local_stage="local")
    assert description.sources == (
        SqsSource("on_q", "q", 7, 0, 3),
        SqsSource("on_arn", "by-arn", 1, 0, None),
        S3Source("on_upload", "b", ("s3:ObjectCreated:*",), "uploads/", None),
        StreamSource("on_change", "arn:stream", 100, "TRIM_HORIZON"),
        ScheduleSource("hourly", "rate(1 hour)", 3600),
    )
    assert description.not_run == ()
    assert description.functions["on_q"].timeout_s == 90
    assert description.functions["on_arn"].timeout_s == 30
    assert description.functions["on_q"].function_name == "described-local-on_q"


@pytest.mark.parametrize(
    "response, failed",
    [
        (None, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        # Lambda fails the whole batch on an empty or unknown identifier.
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, {"a", "b"}),
        ("not a dict", set()),
    ],
)
def test_failed_item_ids_follow_lambdas_partial_batch_rules(response, failed):
    assert events.failed_item_ids(response, ["a", "b"]) == failed


def test_sqs_record_has_lambdas_keys_and_base64_binary_attributes():
    message = {
        "MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}", "MD5OfBody": "x",
        "Attributes": {"ApproximateReceiveCount": "2"},
        "MessageAttributes": {"blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}},
    }
    record = events.sqs_record(message, "arn:aws:sqs:us-east-1:1:q", "us-east-1")
    assert record["messageId"] == "m1" and record["receiptHandle"] == "r1"
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    assert record["eventSource"] == "aws:sqs" and record["awsRegion"] == "us-east-1"


def test_s3_test_event_is_not_a_handler_event():
    assert events.s3_notification(json.dumps({"Event": "s3:TestEvent", "Bucket": "b"})) is None


def test_a_worker_that_cannot_import_the_app_fails_start_with_the_reason(tmp_path):
    (tmp_path / "app.py").write_text("raise ImportError('chalicelib is missing')\n")
    pool = LambdaPool(tmp_path, {}, workers=1, log_level=logging.CRITICAL)
    with pytest.raises(AppLoadError, match="could not load the app"):
        pool.start()
