"""The IAM policy (infra/policy.py, written to .chalice/policy-<stage>.json)
against every AWS call the app made over the e2e suite.

The embedded AWS and the WebSocket gateway keep a ledger of calls by caller,
with the operation and the resource's ARN (local_cloud/aws_middleware.py);
tests/support/aws_calls.py reads the ledgers of every local cloud the session
started. The app is two callers: its Lambda handlers ("local-lambda") and its
API, which runs inside local_cloud and signs with local_cloud's default key
("local"). Left out: the pump's polling ("local-pump", which on AWS is the
event source mappings' own), the tests' own clients ("e2e-test"), and
unsigned requests (a browser's CORS preflight).

conftest.py runs these after every other e2e test. The first two play the
parts of the app the other tests leave untried, so that each grant has a
call behind it; the checks follow: every call allowed, every grant used.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from infra.policy import allows, grants, policy_for
from tests.support.aws_calls import AWS_CALLS, Access
from tests.support.callback_receiver import CallbackReceiver
from tests.support.http_jobs import wait_final

pytestmark = pytest.mark.e2e


def _policy(stage: str) -> dict:
    """The policy deploys write, for a local cloud's stage. Its WebSocket
    gateway serves under the local_cloud stage's name, where API Gateway
    has its own stage ("api")."""
    return policy_for(stage, api_stage=stage)


# The IAM action that authorises each operation the ledgers name. A
# transaction needs its items' actions; batch sends and deletes are
# authorised as single ones; a presigned POST (PostObject) or GET is the
# signer's PutObject or GetObject; HEAD needs GetObject.
def _same(service: str, *operations: str) -> dict[str, str]:
    return {operation: f"{service}:{operation}" for operation in operations}


IAM_ACTIONS = {
    "s3": {**_same("s3", "GetObject", "PutObject", "DeleteObject", "AbortMultipartUpload"),
           "HeadObject": "s3:GetObject", "PostObject": "s3:PutObject",
           "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
           "CompleteMultipartUpload": "s3:PutObject",
           "CopyObject": "s3:PutObject", "CopyObject.Source": "s3:GetObject",
           "DeleteObjects": "s3:DeleteObject", "ListObjectsV2": "s3:ListBucket"},
    "dynamodb": {**_same("dynamodb", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
                         "BatchWriteItem", "BatchGetItem"),
                 "TransactWriteItems.Put": "dynamodb:PutItem",
                 "TransactWriteItems.Update": "dynamodb:UpdateItem",
                 "TransactWriteItems.Delete": "dynamodb:DeleteItem",
                 "TransactWriteItems.ConditionCheck": "dynamodb:ConditionCheckItem",
                 "TransactGetItems.Get": "dynamodb:GetItem"},
    "sqs": {**_same("sqs", "GetQueueUrl", "SendMessage", "ReceiveMessage", "DeleteMessage",
                    "GetQueueAttributes", "ChangeMessageVisibility"),
            "SendMessageBatch": "sqs:SendMessage", "DeleteMessageBatch": "sqs:DeleteMessage",
            "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility"},
    "execute-api": {op: "execute-api:ManageConnections"
                    for op in ("PostToConnection", "GetConnection", "DeleteConnection")},
}

# Grants no local call can use, each for its reason.
NOT_CALLED_LOCALLY = {
    # Lambda's event source mappings poll with the functions' role (the
    # pump does it locally, with its own key).
    "sqs:ReceiveMessage": "SQS event source mappings",
    "sqs:DeleteMessage": "SQS event source mappings",
    "sqs:GetQueueAttributes": "SQS event source mappings",
    "dynamodb:DescribeStream": "the jobs table's stream mapping",
    "dynamodb:GetRecords": "the jobs table's stream mapping",
    "dynamodb:GetShardIterator": "the jobs table's stream mapping",
    "dynamodb:ListStreams": "the jobs table's stream mapping",
    # Lambda writes the functions' logs, and their traces when "xray" is on.
    "logs:CreateLogGroup": "Lambda's logging",
    "logs:CreateLogStream": "Lambda's logging",
    "logs:PutLogEvents": "Lambda's logging",
    "xray:PutTraceSegments": "active tracing",
    "xray:PutTelemetryRecords": "active tracing",
    # The app's own call, but locally pages are read by Tesseract; the
    # Textract engine's call is proved against botocore's Stubber
    # (tests/unit/test_ocr.py).
    "textract:DetectDocumentText": "OCR on AWS only",
}


def _iam_action(access: Access) -> str:
    action = IAM_ACTIONS.get(access.service, {}).get(access.operation)
    assert action, f"no IAM action known for {access.service} {access.operation}: add it to IAM_ACTIONS"
    return action


# -- what the other tests leave untried ------------------------------------------------

def test_cancelling_a_job_removes_its_work_files(local_cloud):
    created = local_cloud.http.post(f"{local_cloud.api_url}/uploads", timeout=30,
                                    json={"filename": "never-sent.csv", "processor": "profile"})
    assert created.status_code == 201, created.text
    job_id = created.json()["job_id"]
    # What a worker would have left, had the file come.
    s3, bucket = local_cloud.client("s3"), local_cloud.outputs["BucketName"]
    s3.put_object(Bucket=bucket, Key=f"work/{job_id}/partials/000000.json", Body=b"{}")

    cancelled = local_cloud.http.delete(f"{local_cloud.api_url}/jobs/{job_id}", timeout=30)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert s3.list_objects_v2(Bucket=bucket, Prefix=f"work/{job_id}/")["KeyCount"] == 0


def test_a_callback_refused_for_good_lands_in_the_dead_letter_queue(local_cloud):
    sqs = local_cloud.client("sqs")
    dlq = sqs.get_queue_url(QueueName=local_cloud.outputs["CallbackDLQName"])["QueueUrl"]
    with CallbackReceiver(default_status=400) as receiver:
        resp = local_cloud.http.post(
            f"{local_cloud.api_url}/jobs", timeout=30, data=b"a,b\n1,2\n",
            headers={"Content-Type": "text/csv"},
            params={"processor": "profile", "filename": "gone.csv", "callback_url": f"{receiver.url}/gone"})
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]
        wait_final(local_cloud.http, job_id)
        receiver.wait_for(1, timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           VisibilityTimeout=0).get("Messages", []):
            body = json.loads(message["Body"])
            if body["notice"]["job_id"] == job_id:
                sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
                assert len(body["errors"]) == 1 and "400" in body["errors"][0], body["errors"]
                return
    raise AssertionError(f"no dead letter for the callback of {job_id}")


# -- the checks ------------------------------------------------------------------------
# The grants first: they are judged only when every test before them passed.

def test_every_grant_of_the_policy_was_used(request, local_cloud):
    incomplete = _why_not_every_call_was_seen(request.session)
    if incomplete:
        pytest.skip(f"unused grants are judged over the whole e2e suite: {incomplete}")
    # The same grant, n-th of the policy whatever the stage, is used when a
    # call of any local cloud falls under it as rendered for that cloud.
    used = set()
    for access in AWS_CALLS.accesses():
        used.update(n for n, grant in enumerate(grants(_policy(access.stage)))
                    if grant.covers(_iam_action(access), access.resource))
    unused = [f"{g.action} on {g.resource} (statement {g.sid})"
              for n, g in enumerate(grants(policy_for("dev")))
              if g.action not in NOT_CALLED_LOCALLY and n not in used]
    assert not unused, ("The policy grants what no call of the e2e suite used (drop it from "
                        "infra/policy.py, or say why in NOT_CALLED_LOCALLY):\n  " + "\n  ".join(unused))


def test_the_policy_allows_every_call_the_app_made(local_cloud):
    accesses = AWS_CALLS.accesses()
    assert accesses, "no AWS call of the app was recorded"
    refused = sorted({f"{_iam_action(a)} on {a.resource} (by {a.actor}: {a.service} {a.operation}, {n} calls)"
                      for a, n in accesses.items()
                      if not allows(_policy(a.stage), _iam_action(a), a.resource)})
    assert not refused, "The policy (infra/policy.py) does not allow:\n  " + "\n  ".join(refused)


def test_what_is_not_called_locally_is_granted():
    granted = {g.action for g in grants(policy_for("dev"))}
    assert set(NOT_CALLED_LOCALLY) <= granted, set(NOT_CALLED_LOCALLY) - granted


def _why_not_every_call_was_seen(session: pytest.Session) -> str | None:
    here = Path(__file__).parent
    ran = {item.path.name for item in session.items if item.path.parent == here}
    left_out = sorted(p.name for p in here.glob("test_*.py") if p.name not in ran)
    option = session.config.option
    if left_out:
        return f"{', '.join(left_out)} not run"
    if option.keyword or option.markexpr or getattr(option, "deselect", None) or \
            any("::" in arg for arg in session.config.args):
        return "tests were selected"
    if hasattr(session.config, "workerinput"):
        return "the suite is split across xdist workers"
    if session.testsfailed:
        return f"{session.testsfailed} test(s) failed, and may not have made their calls"
    if AWS_CALLS.unread:
        return f"a ledger could not be read: {AWS_CALLS.unread}"
    return None
