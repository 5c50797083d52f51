"""The JobStore promises failure handling relies on, kept alike by the
in-memory store and the DynamoDB one (on moto, with the table deployed from
infra/template.yaml): noting a chunk's error, reopening failed chunks for a
retry, and listing unfinished jobs from the `open_jobs` index."""
from __future__ import annotations

import pytest

from chalicelib.jobs.model import Job, JobStatus, TransitionRejectedError
from tests.integration import test_store_contract as contract

# The very fixture of the main contract: the in-memory store, then DynamoDB's.
store = contract.store
OPEN = contract.OPEN
TTL = 2_000_000_000
FINAL = ("failed", "completed_with_errors")


def _processing(store, job_id="j1", chunks=3) -> None:
    store.create_job(Job(job_id=job_id, processor="profile", filename="a.csv",
                         source_key=f"uploads/{job_id}/source"), TTL)
    store.transition(job_id, ["received"], "processing", chunks_total=chunks)
    store.put_chunks(job_id, [{"index": i, "key": "k", "start": i, "end": i + 1,
                               "message": f'{{"n":{i}}}'} for i in range(chunks)], TTL)


def test_a_noted_error_is_kept_on_a_pending_chunk_only(store):
    _processing(store)
    store.note_chunk_error("j1", 0, "ServiceError: throttled")
    store.note_chunk_error("j1", 0, "ServiceError: timed out")
    chunk = store.get_chunk("j1", 0)
    assert (chunk["status"], chunk["attempts"]) == ("pending", 2)
    assert chunk["last_error"] == "ServiceError: timed out"
    assert chunk["last_error_at"] and chunk["message"] == '{"n":0}'
    store.complete_chunk("j1", 1, 5, "p1", OPEN)
    store.note_chunk_error("j1", 1, "late")
    store.note_chunk_error("j1", 7, "no such chunk")
    assert "last_error" not in store.get_chunk("j1", 1)
    assert store.get_chunk("j1", 7) is None
    assert [c["index"] for c in store.list_chunks("j1")] == [0, 1, 2]


def test_retry_reopens_the_job_and_its_failed_chunks_together(store):
    _processing(store)
    store.complete_chunk("j1", 0, 5, "p0", OPEN)
    store.fail_chunk("j1", 1, "bad bytes", OPEN)
    store.fail_chunk("j1", 2, "gone", OPEN)
    store.transition("j1", ["processing"], "failed", error="a.csv: too many", finished_at="2026-01-01")

    job = store.retry_chunks("j1", [1, 2], FINAL, TTL + 10)
    assert (job.status, job.chunks_done, job.chunks_failed, job.rows_done) == (JobStatus.PROCESSING, 1, 0, 5)
    assert job.error is None and job.finished_at is None
    chunks = {c["index"]: c for c in store.list_chunks("j1")}
    assert [chunks[i]["status"] for i in range(3)] == ["done", "pending", "pending"]
    assert (chunks[1]["last_error"], chunks[2]["last_error"]) == ("bad bytes", "gone")
    assert "error" not in chunks[1] and "settled_at" not in chunks[1]
    assert [j.job_id for j in store.list_open_jobs()] == ["j1"]
    # Counted again as any pending chunk is.
    assert store.complete_chunk("j1", 1, 4, "p1", OPEN) is True
    assert store.get_job("j1").chunks_done == 2


def test_retry_changes_nothing_unless_the_job_is_final_and_each_chunk_failed(store):
    _processing(store)
    store.fail_chunk("j1", 0, "bad", OPEN)
    with pytest.raises(TransitionRejectedError):
        store.retry_chunks("j1", [0], FINAL, TTL)  # still processing
    store.complete_chunk("j1", 1, 1, "p1", OPEN)
    store.fail_chunk("j1", 2, "bad", OPEN)
    store.transition("j1", ["processing"], "completed_with_errors")
    with pytest.raises(TransitionRejectedError):
        store.retry_chunks("j1", [0, 1], FINAL, TTL)  # chunk 1 is done
    job = store.get_job("j1")
    assert (job.status, job.chunks_failed) == (JobStatus.COMPLETED_WITH_ERRORS, 2)
    assert store.get_chunk("j1", 0)["status"] == "failed"


def test_open_jobs_are_listed_until_they_end_and_again_when_reopened(store):
    for job_id in ("a", "b", "c"):
        _processing(store, job_id, chunks=1)
    store.transition("b", ["processing"], "cancelled")
    store.fail_chunk("c", 0, "bad", OPEN)
    store.transition("c", ["processing"], "failed")
    assert [j.job_id for j in store.list_open_jobs()] == ["a"]
    store.retry_chunks("c", [0], FINAL, TTL)
    assert sorted(j.job_id for j in store.list_open_jobs()) == ["a", "c"]


def test_the_sweepers_marks_are_kept_on_the_job(store):
    _processing(store)
    store.transition("j1", ["processing"], "processing", sweeps={"processing": 1})
    assert store.get_job("j1").sweeps == {"processing": 1}
