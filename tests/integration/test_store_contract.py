"""One contract, two implementations: the in-memory JobStore and BlobStore
keep exactly the promises of the DynamoDB and S3 adapters (run on moto)."""
from __future__ import annotations

import pytest

from chalicelib.adapters import DynamoJobStore, S3BlobStore
from chalicelib.jobs.memory import MemoryBlobStore, MemoryJobStore
from chalicelib.jobs.model import Job, JobNotFoundError, JobStatus, TransitionRejectedError
from chalicelib.jobs.ports import JobRecord
from tests.support.races import settle_every_chunk_three_times_at_once

OPEN = ("splitting", "processing")


@pytest.fixture(params=["memory", "dynamodb"])
def store(request):
    if request.param == "memory":
        return MemoryJobStore()
    stack = request.getfixturevalue("moto_stack")
    return DynamoJobStore(stack.client("dynamodb"), stack.settings.table)


@pytest.fixture(params=["memory", "s3"])
def blobs(request):
    if request.param == "memory":
        return MemoryBlobStore()
    stack = request.getfixturevalue("moto_stack")
    return S3BlobStore(stack.client("s3"), stack.settings.bucket)


def _job(job_id="j1", **kw) -> Job:
    return Job(job_id=job_id, processor="profile", filename="a.csv", source_key=f"uploads/{job_id}/a.csv",
               options={"type_threshold": 0.95, "nested": {"x": [1, 2.5]}}, **kw)


def test_create_is_idempotent_and_round_trips(store):
    assert store.create_job(_job(), ttl_epoch=2_000_000_000) is True
    assert store.create_job(_job(), ttl_epoch=2_000_000_000) is False
    job = store.get_job("j1")
    assert job.status == JobStatus.RECEIVED
    assert job.options == {"type_threshold": 0.95, "nested": {"x": [1, 2.5]}}
    assert (job.chunks_done, job.chunks_failed, job.rows_done, job.chunks_total) == (0, 0, 0, None)


def test_missing_job_raises_not_found(store):
    with pytest.raises(JobNotFoundError):
        store.get_job("nope")
    with pytest.raises(JobNotFoundError):
        store.transition("nope", ["received"], "splitting")


def test_transition_is_conditional(store):
    store.create_job(_job(), 2_000_000_000)
    job = store.transition("j1", ["received"], "splitting")
    assert job.status == JobStatus.SPLITTING
    with pytest.raises(TransitionRejectedError):
        store.transition("j1", ["received"], "splitting")
    job = store.transition("j1", ["splitting"], "processing", chunks_total=3)
    assert job.chunks_total == 3
    assert store.get_job("j1").status == JobStatus.PROCESSING


def test_chunk_settles_once_and_counts_once(store):
    store.create_job(_job(), 2_000_000_000)
    store.transition("j1", ["received"], "processing", chunks_total=2)
    store.put_chunks("j1", [{"index": 0, "key": "k", "start": 0, "end": 10},
                            {"index": 1, "key": "k", "start": 10, "end": None}], 2_000_000_000)
    assert store.complete_chunk("j1", 0, 7, "p0", OPEN) is True
    assert store.complete_chunk("j1", 0, 7, "p0", OPEN) is False  # redelivery
    assert store.fail_chunk("j1", 0, "late failure", OPEN) is False  # already settled
    assert store.fail_chunk("j1", 1, "bad bytes", OPEN) is True
    job = store.get_job("j1")
    assert (job.chunks_done, job.chunks_failed, job.rows_done) == (1, 1, 7)
    assert job.all_chunks_settled
    chunks = {c["index"]: c for c in store.list_chunks("j1")}
    assert chunks[0]["status"] == "done" and chunks[0]["rows"] == 7 and chunks[0]["result_key"] == "p0"
    assert chunks[1]["status"] == "failed" and chunks[1]["error"] == "bad bytes"


def test_a_chunk_keeps_its_summary_and_what_it_covers(store):
    store.create_job(_job(), 2_000_000_000)
    store.transition("j1", ["received"], "processing", chunks_total=1)
    store.put_chunks("j1", [{"index": 0, "key": "k", "start": 0, "end": None, "first_row": 11,
                             "last_row": 20}], 2_000_000_000)
    summary = {"npi_pages": [12, 17], "confidence": 87.5}
    assert store.complete_chunk("j1", 0, 10, "p0", OPEN, summary=summary) is True
    [chunk] = store.list_chunks("j1")
    assert (chunk["first_row"], chunk["last_row"], chunk["summary"]) == (11, 20, summary)
    assert chunk["settled_at"]


def test_put_chunks_never_resets_a_settled_chunk(store):
    store.create_job(_job(), 2_000_000_000)
    store.transition("j1", ["received"], "processing", chunks_total=1)
    store.put_chunks("j1", [{"index": 0, "key": "k", "start": 0, "end": None}], 2_000_000_000)
    store.complete_chunk("j1", 0, 3, "p0", OPEN)
    store.put_chunks("j1", [{"index": 0, "key": "k", "start": 0, "end": None}], 2_000_000_000)
    assert store.list_chunks("j1")[0]["status"] == "done"
    assert store.complete_chunk("j1", 0, 3, "p0", OPEN) is False


def test_closed_job_takes_no_work(store):
    store.create_job(_job(), 2_000_000_000)
    store.transition("j1", ["received"], "cancelled")
    store.put_chunks("j1", [{"index": 0, "key": "k", "start": 0, "end": None}], 2_000_000_000)
    with pytest.raises(TransitionRejectedError):
        store.complete_chunk("j1", 0, 3, "p0", OPEN)
    assert store.list_chunks("j1")[0]["status"] == "pending"
    assert store.get_job("j1").chunks_done == 0


def test_concurrent_settles_count_exactly():
    # moto's in-process DynamoDB applies transactions without a lock, so the
    # DynamoDB side of this promise is proved against the embedded AWS server
    # (tests/integration/test_concurrency.py), which serialises them as AWS does.
    store = MemoryJobStore()
    store.create_job(_job(), 2_000_000_000)
    store.transition("j1", ["received"], "processing", chunks_total=20)
    store.put_chunks("j1", [{"index": i, "key": "k", "start": 0, "end": None} for i in range(20)],
                     2_000_000_000)
    assert sum(settle_every_chunk_three_times_at_once(store, "j1")) == 20
    job = store.get_job("j1")
    assert (job.chunks_done, job.rows_done) == (20, 100)


def test_list_jobs_newest_first(store):
    for i, stamp in enumerate(["2026-01-01T00:00:00.000Z", "2026-01-03T00:00:00.000Z",
                               "2026-01-02T00:00:00.000Z"]):
        store.create_job(_job(f"j{i}", created_at=stamp), 2_000_000_000)
    assert [j.job_id for j in store.list_jobs(limit=2)] == ["j1", "j2"]


def test_records_round_trip(store):
    store.create_job(_job(), 2_000_000_000)
    store.put_record("j1", "FILE", {"status": "success", "statistics": {"a": {"avg": 1.5, "count": 2}},
                                    "error_message": None}, 2_000_000_000)
    record = store.get_record("j1", "FILE")
    assert record["status"] == "success"
    assert record["statistics"] == {"a": {"avg": 1.5, "count": 2}}
    assert "error_message" not in record
    assert store.get_record("j1", "OTHER") is None


def test_a_record_goes_with_its_transition_or_not_at_all(store):
    store.create_job(_job(), 2_000_000_000)
    store.transition("j1", ["received"], "aggregating")
    record = JobRecord("FILE", {"status": "success", "row_count": 3, "error_message": None}, 2_000_000_000)
    job = store.transition("j1", ["aggregating"], "completed", record=record,
                           finished_at="2026-01-02T00:00:00.000Z", totals={"rows": 3})
    assert (job.status, job.finished_at, job.totals) == (JobStatus.COMPLETED, "2026-01-02T00:00:00.000Z",
                                                         {"rows": 3})
    assert _without_expiry(store.get_record("j1", "FILE")) == {"status": "success", "row_count": 3}
    assert store.list_open_jobs() == []
    # Refused by the job's status, or by its absence: neither is written.
    late = JobRecord("FILE", {"status": "error"}, 2_000_000_000)
    with pytest.raises(TransitionRejectedError):
        store.transition("j1", ["aggregating"], "failed", record=late, error="late")
    with pytest.raises(JobNotFoundError):
        store.transition("nope", ["aggregating"], "failed", record=late, error="late")
    assert (store.get_job("j1").status, store.get_job("j1").error) == (JobStatus.COMPLETED, None)
    assert store.get_record("j1", "FILE")["status"] == "success"
    assert store.get_record("nope", "FILE") is None


def _without_expiry(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "expires_at"}


def test_blob_ranges_and_blocks(blobs):
    data = bytes(range(256)) * 40
    blobs.put("work/x.bin", data, metadata={"job-id": "j1"})
    assert blobs.get("work/x.bin") == data
    assert blobs.read_range("work/x.bin", 10, 20) == data[10:20]
    assert blobs.read_range("work/x.bin", 10_000, None) == data[10_000:]
    assert blobs.read_range("work/x.bin", 5, 5) == b""
    assert b"".join(blobs.iter_blocks("work/x.bin", 1000)) == data
    info = blobs.head("work/x.bin")
    assert info.size == len(data) and info.metadata == {"job-id": "j1"}


def test_blob_delete_prefix(blobs, tmp_path):
    for i in range(3):
        blobs.put(f"work/j1/{i}", b"x")
    blobs.put("work/j2/0", b"y")
    assert blobs.delete_prefix("work/j1/") == 3
    assert blobs.get("work/j2/0") == b"y"
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b\n1,2\n")
    blobs.upload_from(str(path), "work/j2/f.csv")
    out = tmp_path / "g.csv"
    blobs.download_to("work/j2/f.csv", str(out))
    assert out.read_bytes() == b"a,b\n1,2\n"
