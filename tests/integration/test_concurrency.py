"""Races against DynamoDB as the app meets it locally: moto's server behind
local_cloud's middleware (which gives moto DynamoDB's atomicity), hit from
many threads at once."""
from __future__ import annotations

import threading

import pytest

from chalicelib.adapters import DynamoJobStore, SqsTaskQueue
from chalicelib.auth.memory import MemoryApiKeyStore, MemoryTicketStore
from chalicelib.jobs.lifecycle import start_aggregation_if_done
from chalicelib.jobs.memory import MemoryBlobStore
from chalicelib.jobs.model import Job
from chalicelib.jobs.pipeline import Pipeline
from chalicelib.limits.memory import MemoryWindowCounter
from chalicelib.live.memory import MemoryConnectionStore, RecordingSender
from chalicelib.settings import Settings
from local_cloud.aws_server import AwsClients, EmbeddedAws
from local_cloud.stack import deploy_stack
from tests.support.races import settle_every_chunk_three_times_at_once

OPEN = ("splitting", "processing")


@pytest.fixture(scope="module")
def server():
    aws = EmbeddedAws(port=0)
    url = aws.start()
    clients = AwsClients(url)
    outputs = deploy_stack(clients, stage="race")
    yield clients, outputs, aws
    aws.stop()


def _job(store, job_id, chunks):
    store.create_job(Job(job_id=job_id, processor="profile", filename="a.csv",
                         source_key=f"uploads/{job_id}/a.csv"), 2_000_000_000)
    store.transition(job_id, ["received"], "processing", chunks_total=chunks)
    store.put_chunks(job_id, [{"index": i, "key": "k", "start": 0, "end": None} for i in range(chunks)],
                     2_000_000_000)


def test_redeliveries_racing_count_each_chunk_once(server):
    clients, outputs, _ = server
    store = DynamoJobStore(clients("dynamodb"), outputs["TableName"])
    _job(store, "race-1", 20)
    assert sum(settle_every_chunk_three_times_at_once(store, "race-1")) == 20
    job = store.get_job("race-1")
    assert (job.chunks_done, job.rows_done) == (20, 100)


def test_two_finishers_at_the_same_moment_start_one_aggregation(server):
    clients, outputs, aws = server
    settings = Settings.from_env()
    store = DynamoJobStore(clients("dynamodb"), outputs["TableName"])
    queue = SqsTaskQueue(clients("sqs"), outputs["AggregateQueueName"])
    pipe = Pipeline(store=store, blobs=MemoryBlobStore(), work_queue=queue, aggregate_queue=queue,
                    results_queue=queue, callback_queue=queue, callback_dlq=queue,
                    limits=MemoryWindowCounter(), connections=MemoryConnectionStore(),
                    live=RecordingSender(), settings=settings, keys=MemoryApiKeyStore(),
                    tickets=MemoryTicketStore())
    for round_ in range(5):
        job_id = f"race-agg-{round_}"
        _job(store, job_id, 2)
        barrier = threading.Barrier(2)
        wins = []

        def last_chunk(index, job_id=job_id, barrier=barrier, wins=wins):
            store.complete_chunk(job_id, index, 1, f"p{index}", OPEN)
            barrier.wait()
            wins.append(start_aggregation_if_done(pipe, job_id))

        threads = [threading.Thread(target=last_chunk, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(wins) == [False, True]
        assert store.get_job(job_id).status.value == "aggregating"
    sqs = clients("sqs")
    url = sqs.get_queue_url(QueueName=outputs["AggregateQueueName"])["QueueUrl"]
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        bodies += [m["Body"] for m in got]
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    assert sorted(bodies) == sorted(f'{{"type":"aggregate","job_id":"race-agg-{r}"}}' for r in range(5))


def test_the_ledger_counts_calls_by_caller(server):
    clients, outputs, aws = server
    aws.ledger.clear()
    other = AwsClients(aws.url, access_key="someone-else")
    other("s3").list_objects_v2(Bucket=outputs["BucketName"])
    clients("dynamodb").describe_table(TableName=outputs["TableName"])
    calls = {(c["actor"], c["service"], c["operation"]): c["count"] for c in aws.ledger.snapshot()}
    assert calls == {("someone-else", "s3", "GETBucket"): 1, ("local", "dynamodb", "DescribeTable"): 1}
