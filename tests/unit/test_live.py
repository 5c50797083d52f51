"""Live progress on the in-memory pipeline: subscriptions, the messages a
follower gets, throttled PROGRESS, and connections that went away."""
from __future__ import annotations

import base64
import dataclasses
import json
import time

from chalicelib.auth import issue_key
from chalicelib.auth.tickets import issue_ticket
from chalicelib.jobs.dispatch import handle_uploaded_object, new_job, store_upload
from chalicelib.jobs.finish import aggregate_job
from chalicelib.jobs.model import ChunkTask, Job, JobStatus
from chalicelib.jobs.work import run_chunk
from chalicelib.live import messages
from chalicelib.live import service as live
from tests.support.files import csv_bytes
from tests.support.memory_pipeline import memory_pipeline

NOW = 1_800_000_000
BAD_ROWS = csv_bytes([["activity", "amount", "unit"]] + [["diesel", "10", "litres"]] * 20
                     + [["diesel", "x", "litres"]])


def _job(pipe, data=BAD_ROWS, processor="carbon"):
    job = new_job(pipe, "a.csv", processor, {})
    store_upload(pipe, job, data, "text/csv")
    handle_uploaded_object(pipe, job.source_key)
    return job


def _connect(pipe, connection_id: str, tenant: str = "default") -> None:
    """A connection signed in with a key of `tenant` (jobs here are "default"'s)."""
    key, _ = issue_key(pipe.keys, tenant, "test", NOW, days=1)
    assert live.connect(pipe, connection_id, "127.0.0.1", key, NOW) is True


def _changes(pipe, job_id, before=None):
    return [(before, pipe.store.get_job(job_id))]


def test_a_follower_gets_progress_errors_and_the_end_in_order():
    pipe = memory_pipeline(chunk_bytes=80)
    _connect(pipe, "c1")
    job = _job(pipe)
    live.handle_message(pipe, "c1", json.dumps({"action": "subscribe", "job_id": job.job_id}), NOW)
    for body in pipe.work_queue.drain():
        run_chunk(pipe, ChunkTask.from_message(body))
        live.announce_job_changes(pipe, _changes(pipe, job.job_id, "processing"))
    for body in pipe.aggregate_queue.drain():
        aggregate_job(pipe, body["job_id"])
    live.announce_job_changes(pipe, _changes(pipe, job.job_id, "aggregating"))

    sent = pipe.live.sent["c1"]
    kinds = [m["type"] for m in sent]
    assert kinds[0] == "PROGRESS" and kinds[-2:] == ["PROGRESS", "COMPLETE"]
    assert kinds.count("ROW_ERROR") == 1
    assert [m for m in sent if m["type"] == "ROW_ERROR"][0]["data"]["row"] == 22
    values = [m["value"] for m in sent if m["type"] == "PROGRESS"]
    assert values == sorted(values) and values[-1] == 100 and max(values[:-1]) < 100
    complete = sent[-1]
    assert complete["job_id"] == job.job_id and complete["download_url"]
    assert complete["status"] == "completed_with_errors"


def test_progress_is_throttled_per_job():
    pipe = memory_pipeline(chunk_bytes=40, live_progress_per_second=2)
    _connect(pipe, "c1")
    job = _job(pipe)
    pipe.connections.subscribe(job.job_id, "c1", NOW)
    started = time.time()
    for body in pipe.work_queue.drain():
        run_chunk(pipe, ChunkTask.from_message(body))
        live.announce_job_changes(pipe, _changes(pipe, job.job_id, "processing"))
    # The limit is per one-second window on the wall clock: the loop may cross into a second.
    windows = int(time.time()) - int(started) + 1
    progress = [m for m in pipe.live.sent["c1"] if m["type"] == "PROGRESS"]
    assert pipe.store.get_job(job.job_id).chunks_total > 2 * windows
    assert 1 <= len(progress) <= 2 * windows


def test_a_redelivered_chunk_pushes_its_events_once():
    pipe = memory_pipeline(chunk_bytes=1 << 20)
    job = _job(pipe)
    pipe.connections.subscribe(job.job_id, "c1", NOW)
    [body] = pipe.work_queue.drain()
    run_chunk(pipe, ChunkTask.from_message(body))
    run_chunk(pipe, ChunkTask.from_message(body))
    assert [m["type"] for m in pipe.live.sent["c1"]] == ["ROW_ERROR"]


def test_a_gone_connection_is_dropped_and_disconnect_forgets_it():
    pipe = memory_pipeline()
    job = _job(pipe)
    for cid in ("c1", "c2"):
        _connect(pipe, cid)
        live.handle_message(pipe, cid, json.dumps({"action": "subscribe", "job_id": job.job_id}), NOW)
    pipe.live.gone.add("c2")
    assert live.publish(pipe, job.job_id, [{"type": "PROGRESS"}]) == 1
    assert pipe.connections.subscribers(job.job_id) == ["c1"]
    assert "c2" not in pipe.connections.connections  # the connection itself is forgotten
    live.disconnect(pipe, "c1")
    assert pipe.connections.subscribers(job.job_id) == []


def test_bad_requests_get_an_error_message():
    pipe = memory_pipeline()
    _connect(pipe, "c9")
    for body, words in [("not json", "JSON object"),
                        ('{"action": "dance"}', "unknown action"),
                        ('{"action": "subscribe", "job_id": "nope"}', "no job"),
                        ('{"action": "start_scan", "file_content": "%%%"}', "base64")]:
        live.handle_message(pipe, "c9", body, NOW)
        last = pipe.live.sent["c9"][-1]
        assert last["type"] == "ERROR" and words in last["message"], (body, last)


def test_start_scan_creates_the_job_subscribes_and_says_started():
    pipe = memory_pipeline()
    _connect(pipe, "c1", tenant="acme")
    request = {"action": "start_scan", "processor": "profile", "file_name": "a.csv",
               "file_content": base64.b64encode(b"a,b\n1,2\n").decode()}
    live.handle_message(pipe, "c1", json.dumps(request), NOW)
    [started] = pipe.live.sent["c1"]
    assert started["type"] == "STARTED" and started["message"] == "Processing started"
    assert pipe.connections.subscribers(started["job_id"]) == ["c1"]
    job = pipe.store.get_job(started["job_id"])
    assert (job.filename, job.tenant) == ("a.csv", "acme")  # the connection's tenant


def test_a_connection_needs_a_live_key_and_sees_its_own_tenants_jobs_only():
    pipe = memory_pipeline()
    key, _ = issue_key(pipe.keys, "acme", "test", NOW, days=1)
    for refused in (None, "", "slk_" + "x" * 43, key + "x"):
        assert live.connect(pipe, "c0", "ip", refused, NOW) is False
    assert live.connect(pipe, "c0", "ip", key, NOW + 2 * 86400) is False  # expired
    assert pipe.connections.get("c0") is None
    live.handle_message(pipe, "c0", json.dumps({"action": "subscribe", "job_id": "x"}), NOW)
    assert "not signed in" in pipe.live.sent["c0"][-1]["message"]
    theirs = _job(pipe)  # the "default" tenant's
    _connect(pipe, "c1", tenant="acme")
    live.handle_message(pipe, "c1", json.dumps({"action": "subscribe", "job_id": theirs.job_id}), NOW)
    assert pipe.live.sent["c1"][-1] == {"type": "ERROR", "message": f"no job with id {theirs.job_id!r}",
                                        "job_id": theirs.job_id}
    assert pipe.connections.subscribers(theirs.job_id) == []


def test_progress_counts_documents_when_known_and_stays_below_100_until_the_job_ends():
    job = Job(job_id="j", processor="scan", filename="d.zip", source_key="k", options={},
              status=JobStatus.AGGREGATING, chunks_total=3, chunks_done=3, rows_done=25, items_total=25)
    assert job.work_counts == (25, 25)
    assert job.percent == 99.9  # every chunk settled, the aggregation still to run
    message = messages.progress(job)
    assert (message["value"], message["processed"], message["total"]) == (99, 25, 25)
    job.status = JobStatus.PROCESSING
    job.rows_done = 10
    assert job.percent == 40.0 and messages.progress(job)["value"] == 40
    job.status = JobStatus.COMPLETED
    job.rows_done = 25
    assert job.percent == 100.0 and messages.progress(job)["value"] == 100
    table = Job(job_id="t", processor="profile", filename="a.csv", source_key="k", options={},
                status=JobStatus.PROCESSING, chunks_total=4, chunks_done=1, chunks_failed=1)
    assert table.work_counts == (2, 4) and table.percent == 50.0


class _BrokenConnections:
    """A connection store whose table throttles every read."""

    def subscribers(self, job_id):
        raise RuntimeError("ProvisionedThroughputExceededException")


def test_pushes_that_fail_neither_fail_the_chunk_nor_stop_the_job():
    pipe = memory_pipeline(chunk_bytes=1 << 20)
    job = _job(pipe)
    pipe = dataclasses.replace(pipe, connections=_BrokenConnections())
    [body] = pipe.work_queue.drain()
    assert run_chunk(pipe, ChunkTask.from_message(body)) == "done"
    [aggregate] = pipe.aggregate_queue.drain()
    aggregate_job(pipe, aggregate["job_id"])
    assert pipe.store.get_job(job.job_id).status == JobStatus.COMPLETED_WITH_ERRORS


def test_a_redelivery_starts_the_aggregation_the_first_delivery_died_before():
    pipe = memory_pipeline(chunk_bytes=1 << 20)
    job = _job(pipe)
    [body] = pipe.work_queue.drain()
    task = ChunkTask.from_message(body)
    # The first delivery counted the chunk, then its process died.
    pipe.store.complete_chunk(job.job_id, task.index, 21, "work/partial.json", ["processing"])
    assert pipe.aggregate_queue.drain() == []
    assert run_chunk(pipe, task) == "duplicate"
    assert [m["job_id"] for m in pipe.aggregate_queue.drain()] == [job.job_id]


def test_a_ticket_signs_a_connection_in_once_for_its_keys_tenant():
    pipe = memory_pipeline()
    key, _ = issue_key(pipe.keys, "acme", "test", NOW, days=1)
    ticket = issue_ticket(pipe.tickets, key, NOW)
    # A ticket wins over a key beside it: a wrong ticket is not rescued by a good key.
    assert live.connect(pipe, "c0", "ip", key, NOW, ticket="slt_" + "x" * 43) is False
    assert live.connect(pipe, "c1", "ip", None, NOW, ticket=ticket) is True
    assert pipe.connections.get("c1")["tenant"] == "acme"
    assert live.connect(pipe, "c2", "ip", None, NOW, ticket=ticket) is False  # spent
    assert pipe.connections.get("c0") is None and pipe.connections.get("c2") is None
