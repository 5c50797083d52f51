"""The connection store's contract, for the in-memory fake and for DynamoDB
(moto): connect, follow jobs, find a job's followers, forget on disconnect."""
from __future__ import annotations

import pytest

from chalicelib.adapters.dynamodb_connections import DynamoConnectionStore
from chalicelib.live.memory import MemoryConnectionStore

TTL = 2_000_000_000


@pytest.fixture(params=["memory", "dynamodb"])
def store(request):
    if request.param == "memory":
        return MemoryConnectionStore()
    stack = request.getfixturevalue("moto_stack")
    return DynamoConnectionStore(stack.client("dynamodb"), stack.settings.table)


def test_followers_of_a_job_are_found_and_kept_apart(store):
    store.add("c1", {"source_ip": "127.0.0.1"}, TTL)
    store.add("c2", {"source_ip": "127.0.0.1"}, TTL)
    store.subscribe("job-a", "c1", TTL)
    store.subscribe("job-a", "c2", TTL)
    store.subscribe("job-b", "c2", TTL)
    store.subscribe("job-a", "c1", TTL)  # twice is once
    assert sorted(store.subscribers("job-a")) == ["c1", "c2"]
    assert store.subscribers("job-b") == ["c2"]
    assert store.subscribers("job-c") == []


def test_disconnect_returns_the_jobs_followed(store):
    store.add("c1", {}, TTL)
    store.subscribe("job-a", "c1", TTL)
    store.subscribe("job-b", "c1", TTL)
    assert sorted(store.remove("c1")) == ["job-a", "job-b"]
    assert store.remove("c1") == []  # already gone


def test_unsubscribe_leaves_the_others(store):
    store.add("c1", {}, TTL)
    store.add("c2", {}, TTL)
    for cid in ("c1", "c2"):
        store.subscribe("job-a", cid, TTL)
    store.unsubscribe("job-a", "c1")
    store.unsubscribe("job-a", "c9")  # unknown: no error
    assert store.subscribers("job-a") == ["c2"]


def test_dynamodb_items_expire_and_live_beside_the_job(moto_stack):
    store = DynamoConnectionStore(moto_stack.client("dynamodb"), moto_stack.settings.table)
    store.add("c1", {"source_ip": "10.0.0.1"}, TTL)
    store.subscribe("job-a", "c1", TTL)
    items = moto_stack.client("dynamodb").scan(TableName=moto_stack.settings.table)["Items"]
    keys = {(i["PK"]["S"], i["SK"]["S"]) for i in items}
    assert {("CONN#c1", "META"), ("JOB#job-a", "SUB#c1")} <= keys
    assert all(i["expires_at"]["N"] == str(TTL) for i in items)
