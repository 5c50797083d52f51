"""Every AWS adapter answers a failing service with ServiceError, the error
the handlers let propagate so that the event is delivered again: an endpoint
that cannot be reached (botocore's own errors) and a refusal AWS answers
(throttles, a cancelled transaction, SQS failing part of a batch). Answers the
adapters expect stay domain answers. The throttle of each job-store, S3 and
SQS method is in tests/unit/test_fault_injection.py."""
from __future__ import annotations

import functools
import socket

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from chalicelib.adapters import DynamoJobStore, S3BlobStore, SqsTaskQueue
from chalicelib.adapters.dynamodb_connections import DynamoConnectionStore
from chalicelib.adapters.dynamodb_factor_cache import DynamoFactorCache
from chalicelib.adapters.dynamodb_keys import DynamoApiKeyStore
from chalicelib.adapters.dynamodb_limits import DynamoWindowCounter
from chalicelib.auth.keys import ApiKey
from chalicelib.carbon.factor_cache import NoFactor
from chalicelib.jobs.model import Job, ServiceError, TransitionRejectedError
from chalicelib.jobs.ports import JobRecord

RECORD = JobRecord("FILE", {"status": "success"}, 1)
KEY = ApiKey(key_id="k1", tenant="t", name="n", created_at=1, expires_at=2)

# Each adapter's methods that reach AWS, called with plain arguments.
CALLS = {
    "DynamoJobStore": [
        lambda s, path: s.create_job(Job("j", "profile", "a.csv", "k"), 1),
        lambda s, path: s.get_job("j"),
        lambda s, path: s.list_jobs(),
        lambda s, path: s.transition("j", ["processing"], "aggregating"),
        lambda s, path: s.transition("j", ["aggregating"], "completed", record=RECORD),
        lambda s, path: s.put_chunks("j", [{"index": 0}], 1),
        lambda s, path: s.complete_chunk("j", 0, 1, "k", ["processing"]),
        lambda s, path: s.fail_chunk("j", 0, "e", ["processing"]),
        lambda s, path: s.list_chunks("j"),
        lambda s, path: s.get_chunk("j", 0),
        lambda s, path: s.note_chunk_error("j", 0, "e"),
        lambda s, path: s.retry_chunks("j", [0], ["failed"], 1),
        lambda s, path: s.list_open_jobs(),
        lambda s, path: s.put_record("j", "FILE", {"a": 1}, 1),
        lambda s, path: s.get_record("j", "FILE"),
    ],
    "DynamoConnectionStore": [
        lambda s, path: s.add("c", {"tenant": "t"}, 1),
        lambda s, path: s.get("c"),
        lambda s, path: s.remove("c"),
        lambda s, path: s.subscribe("j", "c", 1),
        lambda s, path: s.unsubscribe("j", "c"),
        lambda s, path: s.subscribers("j"),
    ],
    "DynamoApiKeyStore": [
        lambda s, path: s.put("d", KEY),
        lambda s, path: s.get("d"),
        lambda s, path: s.delete("k1", "t"),
        lambda s, path: s.list("t"),
    ],
    "DynamoWindowCounter": [lambda s, path: s.hit("k", 60, 5, 1)],
    "DynamoFactorCache": [
        lambda s, path: s.get("q"),
        lambda s, path: s.put("q", NoFactor("none")),
    ],
    "S3BlobStore": [
        lambda s, path: s.head("k"),
        lambda s, path: s.get("k"),
        lambda s, path: s.read_range("k", 0, 10),
        lambda s, path: list(s.iter_blocks("k", 10)),
        lambda s, path: s.put("k", b"x"),
        lambda s, path: s.download_to("k", path),
        lambda s, path: s.upload_from(path, "k"),
        lambda s, path: s.delete_prefix("p/"),
    ],
    "SqsTaskQueue": [
        lambda s, path: s.send_all([{"type": "x"}]),
        lambda s, path: s.send({"type": "x"}),
    ],
}
ADAPTERS = {
    "DynamoJobStore": ("dynamodb", lambda c: DynamoJobStore(c, "t")),
    "DynamoConnectionStore": ("dynamodb", lambda c: DynamoConnectionStore(c, "t")),
    "DynamoApiKeyStore": ("dynamodb", lambda c: DynamoApiKeyStore(c, "t")),
    "DynamoWindowCounter": ("dynamodb", lambda c: DynamoWindowCounter(c, "t")),
    "DynamoFactorCache": ("dynamodb", lambda c: DynamoFactorCache(c, "t", "j", 1)),
    "S3BlobStore": ("s3", lambda c: S3BlobStore(c, "bucket")),
    "SqsTaskQueue": ("sqs", lambda c: SqsTaskQueue(c, "q")),
}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.cache
def _client(service: str, endpoint: str | None = None):
    # No request reaches AWS (a closed port, or a Stubber): the keys are placeholders.
    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint,
                        aws_access_key_id="x", aws_secret_access_key="x",
                        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2))


@pytest.fixture
def path(tmp_path):
    file = tmp_path / "file"
    file.write_bytes(b"x")
    return str(file)


@pytest.mark.parametrize("adapter, call", [
    pytest.param(adapter, call, id=f"{adapter}-{i}")
    for adapter, calls in CALLS.items() for i, call in enumerate(calls)])
def test_an_unreachable_endpoint_is_a_service_error(adapter, call, path):
    service, make = ADAPTERS[adapter]
    store = make(_client(service, f"http://127.0.0.1:{_closed_port()}"))
    with pytest.raises(ServiceError):
        call(store, path)


FAILED_JOB = {"job_id": {"S": "j"}, "processor": {"S": "profile"}, "filename": {"S": "a.csv"},
              "source_key": {"S": "k"}, "status": {"S": "failed"}, "created_at": {"S": "t0"}}


@pytest.mark.parametrize("reason, error, match", [
    ("ThrottlingError", ServiceError, "TransactionCanceled"),
    # The job had moved on (the ending that won): read to say what it is.
    ("ConditionalCheckFailed", TransitionRejectedError, "is failed"),
])
def test_a_transition_with_its_record_cancelled(reason, error, match):
    client = _client("dynamodb")
    with Stubber(client) as stub:
        stub.add_client_error("transact_write_items", "TransactionCanceledException",
                              modeled_fields={"CancellationReasons": [{"Code": reason}, {"Code": "None"}]})
        stub.add_response("get_item", {"Item": FAILED_JOB})
        with pytest.raises(error, match=match):
            DynamoJobStore(client, "t").transition("j", ["aggregating"], "completed", record=RECORD)


def test_sqs_failing_part_of_a_batch_every_time_is_a_service_error():
    client = _client("sqs")
    with Stubber(client) as stub:
        stub.add_response("get_queue_url", {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/1/q"})
        for _ in range(5):
            stub.add_response("send_message_batch", {"Successful": [], "Failed": [
                {"Id": "0", "SenderFault": False, "Code": "InternalError"}]})
        with pytest.raises(ServiceError, match="kept failing"):
            SqsTaskQueue(client, "q").send_all([{"type": "x"}])


def test_an_expected_answer_stays_a_domain_answer():
    client = _client("dynamodb")
    with Stubber(client) as stub:
        stub.add_client_error("update_item", "ConditionalCheckFailedException")
        assert DynamoWindowCounter(client, "t").hit("k", 60, 5, 1) is None
        stub.add_client_error("put_item", "ConditionalCheckFailedException")
        assert DynamoJobStore(client, "t").create_job(Job("j", "profile", "a.csv", "k"), 1) is False
