"""Failure handling in the real `python -m local_cloud`: the pump runs the
sweeper on its schedule (sped up 300 times: every second) and delivers the
work DLQ's messages, in batches, to the app's dead-letter handler. The test
plays the parts it cannot wait for (an upload that never comes, a chunk SQS
gave up on after five deliveries) by writing to the embedded AWS directly."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from chalicelib.adapters import DynamoJobStore
from chalicelib.jobs.model import Job, JobStatus
from tests.e2e.conftest import REPO_ROOT, LocalCloudProcess, _stop, _wait_until_ready, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fast_cloud(tmp_path_factory):
    aws_port, api_port, ws_port = free_port(), free_port(), free_port()
    log_path = tmp_path_factory.mktemp("failure_cloud") / "local_cloud.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LOCAL_CLOUD_SCHEDULE_SPEEDUP": "300",
           "SLUICE_PRESIGN_SECONDS": "2"}
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "local_cloud", "--aws-port", str(aws_port), "--api-port", str(api_port),
             "--ws-port", str(ws_port), "--stage", "failures"],
            cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    cloud = LocalCloudProcess(api_url=f"http://127.0.0.1:{api_port}", aws_url=f"http://127.0.0.1:{aws_port}",
                              ws_url=f"ws://127.0.0.1:{ws_port}", log_path=log_path, process=process)
    try:
        _wait_until_ready(cloud)
        yield cloud
    finally:
        _stop(process)


def _outputs(cloud) -> dict[str, str]:
    stack = cloud.client("cloudformation").describe_stacks(StackName="sluice-failures")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def _store(cloud) -> DynamoJobStore:
    return DynamoJobStore(cloud.client("dynamodb"), _outputs(cloud)["TableName"])


def _wait_final(store, job_id: str, timeout: float = 30) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.get_job(job_id)
        if job.status.is_final:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {store.get_job(job_id).status.value} after {timeout} s")


def test_the_scheduled_sweeper_fails_a_job_whose_file_never_came(fast_cloud):
    store = _store(fast_cloud)
    store.create_job(Job(job_id="never-uploaded", processor="profile", filename="late.csv",
                         source_key="uploads/never-uploaded/source"), int(time.time()) + 3600)
    started = time.monotonic()
    job = _wait_final(store, "never-uploaded")
    assert time.monotonic() - started >= 3  # not before its deadline: twice the 2 s upload link
    assert job.status == JobStatus.FAILED
    assert job.error == ("late.csv: no file arrived within 4 s of the job's creation "
                         "(its upload link had expired)")
    assert "handle_sweep_timer <- schedule rate(5 minutes)" in fast_cloud.log()


def test_chunks_the_work_queue_gave_up_on_fail_and_end_their_job(fast_cloud):
    store, outputs = _store(fast_cloud), _outputs(fast_cloud)
    ttl = int(time.time()) + 3600
    store.create_job(Job(job_id="dead-chunks", processor="profile", filename="sales.csv",
                         source_key="uploads/dead-chunks/source"), ttl)
    store.transition("dead-chunks", ["received"], "processing", chunks_total=3)
    messages = [{"type": "chunk", "job_id": "dead-chunks", "chunk": i, "processor": "profile", "options": {},
                 "source": {"key": "uploads/dead-chunks/source", "start": 10 * i, "end": 10 * i + 10}}
                for i in range(3)]
    store.put_chunks("dead-chunks", [{"index": i, "key": "k", "start": 0, "end": 1,
                                      "message": json.dumps(m)} for i, m in enumerate(messages)], ttl)
    store.note_chunk_error("dead-chunks", 1, "ServiceError: S3 failed: SlowDown")

    # What SQS does after the fifth failed delivery of each: into the DLQ, all at once.
    sqs = fast_cloud.client("sqs")
    dlq = sqs.get_queue_url(QueueName=outputs["WorkDLQName"])["QueueUrl"]
    sqs.send_message_batch(QueueUrl=dlq, Entries=[
        {"Id": str(i), "MessageBody": json.dumps(m)} for i, m in enumerate(messages)])

    job = _wait_final(store, "dead-chunks")
    assert (job.status, job.chunks_failed) == (JobStatus.FAILED, 3)
    chunks = {c["index"]: c["error"] for c in store.list_chunks("dead-chunks")}
    assert chunks[1] == "gave up after 5 deliveries: ServiceError: S3 failed: SlowDown"
    assert chunks[0] == ("gave up after 5 deliveries: no error was noted (the worker timed out or "
                         "was stopped)")
    assert job.error == f"sales.csv: {chunks[0]}"
    attributes = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"],
            attributes["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")
