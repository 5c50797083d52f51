"""The pipeline's promises on the in-memory fakes: redelivery and reordering
change nothing, aggregation starts exactly once, and a chunk count is exact."""
from __future__ import annotations

import json
import threading

from chalicelib import processors
from chalicelib.jobs.dispatch import handle_uploaded_object, new_job, store_upload
from chalicelib.jobs.finish import aggregate_job
from chalicelib.jobs.lifecycle import (
    AGGREGATION_COPY_DELAY_S,
    FILE_RECORD,
    OPEN_FOR_WORK,
    fail_job,
    queue_claimed_aggregations,
    start_aggregation_if_done,
)
from chalicelib.jobs.model import ChunkTask, Job, JobStatus
from chalicelib.jobs.work import run_chunk
from tests.support.memory_pipeline import drain, memory_pipeline, run_file

CSV = b"id,score,when\n" + b"".join(
    f"{i},{i * 1.5 if i % 7 else 'bad'},2024-01-{1 + i % 28:02d}\n".encode() for i in range(1, 301)
)


def result_of(pipe, job):
    return json.loads(pipe.blobs.get(job.result_key))


def dispatched(pipe, data: bytes = CSV, processor: str = "profile", options: dict | None = None) -> Job:
    """A job uploaded and split: its chunks' messages wait on the work queue."""
    job = new_job(pipe, "data.csv", processor, options or {})
    store_upload(pipe, job, data, "text/csv")
    handle_uploaded_object(pipe, job.source_key)
    return job


def at_once(threads: int, call) -> list:
    """What `call()` answered on each of `threads` threads, released together."""
    barrier = threading.Barrier(threads)
    answers = []

    def run():
        barrier.wait()
        answers.append(call())

    started = [threading.Thread(target=run) for _ in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join()
    return answers


def test_duplicates_and_reordering_change_nothing():
    plain_pipe = memory_pipeline(chunk_bytes=10**9)
    plain = run_file(plain_pipe, CSV)
    noisy_pipe = memory_pipeline(chunk_bytes=97)
    noisy = run_file(noisy_pipe, CSV, shuffle=7, duplicate=True)
    assert noisy.chunks_total > 30
    assert noisy.status == plain.status == JobStatus.COMPLETED
    assert (noisy.chunks_done, noisy.chunks_failed, noisy.rows_done) == (noisy.chunks_total, 0, 300)
    assert result_of(noisy_pipe, noisy) == result_of(plain_pipe, plain)


def test_a_chunk_message_delivered_again_later_is_ignored():
    pipe = memory_pipeline(chunk_bytes=200)
    job = run_file(pipe, CSV)
    assert job.status == JobStatus.COMPLETED
    first = pipe.store.list_chunks(job.job_id)[0]
    # The same message again, after the job completed: nothing moves.
    again = ChunkTask.from_message({
        "job_id": job.job_id, "chunk": 0, "processor": "profile", "options": job.options,
        "source": {"key": first["key"], "start": first["start"], "end": first["end"],
                   "header": "id,score,when", "first_row": 2},
    })
    # The job is final, so the chunk is not even started.
    assert run_chunk(pipe, again) == "closed"
    assert pipe.store.get_job(job.job_id).rows_done == 300


def test_aggregation_starts_exactly_once_under_a_race():
    pipe = memory_pipeline(chunk_bytes=200)
    job = dispatched(pipe)
    for body in pipe.work_queue.drain():
        run_chunk(pipe, ChunkTask.from_message(body))
    # run_chunk already claimed it; reset the claim to race many finishers for it.
    assert len(pipe.aggregate_queue.drain()) == 1
    pipe.store.transition(job.job_id, ["aggregating"], "processing")

    wins = at_once(16, lambda: start_aggregation_if_done(pipe, job.job_id))
    assert wins.count(True) == 1
    messages = pipe.aggregate_queue.drain()
    assert messages == [{"type": "aggregate", "job_id": job.job_id}]
    assert aggregate_job(pipe, job.job_id) == "completed"
    assert aggregate_job(pipe, job.job_id) == "skipped"  # a redelivered aggregation message


def test_status_moves_through_the_documented_states():
    pipe = memory_pipeline(chunk_bytes=200)
    job = new_job(pipe, "s.csv", "profile", {})
    assert pipe.store.get_job(job.job_id).status == JobStatus.RECEIVED
    store_upload(pipe, job, CSV, "text/csv")
    handle_uploaded_object(pipe, job.source_key)
    seen = pipe.store.get_job(job.job_id)
    assert seen.status == JobStatus.PROCESSING and seen.percent == 0.0
    drain(pipe)
    done = pipe.store.get_job(job.job_id)
    assert done.status == JobStatus.COMPLETED and done.percent == 100.0 and done.finished_at


class ExplodingProcessor:
    """A processor with a bug: it raises on rows holding 'boom'."""

    name = "exploding"
    chunk_kind = "table"
    row_columns = None

    def validate_options(self, options):
        return dict(options)

    def process(self, chunk, emit):
        if chunk.frame.iloc[:, 0].eq("boom").any():
            raise ZeroDivisionError("division by zero")
        from chalicelib.processors import ChunkResult

        return ChunkResult({"rows": len(chunk.frame)})

    def merge(self, left, right):
        return {"rows": left["rows"] + right["rows"]}

    def finish(self, merged, ctx):
        from chalicelib.processors import Outcome

        return Outcome(result={"rows": merged["rows"]})


def test_an_unexpected_error_fails_the_chunk_instead_of_a_retry_loop(monkeypatch):
    monkeypatch.setitem(processors._REGISTRY, "exploding", ExplodingProcessor())
    pipe = memory_pipeline(chunk_bytes=30)
    data = b"word\n" + b"".join(f"w{i}\n".encode() for i in range(20)) + b"boom\n"
    # One failed chunk is tolerated only when the job says so (the default is 0 %).
    job = run_file(pipe, data, processor="exploding", options={"max_failed_percent": 50})
    assert job.status == JobStatus.COMPLETED_WITH_ERRORS
    assert job.chunks_failed == 1
    errors = result_of(pipe, job)["errors"]["failed_chunks"]
    assert errors[0]["error"] == "the file could not be read (ZeroDivisionError: division by zero)"
    # Only the failed chunk's rows are lost; every other chunk counts.
    assert result_of(pipe, job)["rows"] == job.rows_done >= 21 - 4


def test_a_failed_chunk_delivered_again_after_its_count_starts_the_aggregation(monkeypatch):
    monkeypatch.setitem(processors._REGISTRY, "exploding", ExplodingProcessor())
    pipe = memory_pipeline(chunk_bytes=30)
    data = b"word\n" + b"".join(f"w{i}\n".encode() for i in range(20)) + b"boom\n"
    job = dispatched(pipe, data, "exploding", {"max_failed_percent": 50})
    tasks = [ChunkTask.from_message(body) for body in pipe.work_queue.drain()]
    *others, last = sorted(tasks, key=lambda t: t.index)
    for task in others:
        run_chunk(pipe, task)
    # The last chunk's first worker counted its failure, then died before
    # checking whether the job was done.
    assert pipe.store.fail_chunk(job.job_id, last.index, "division by zero", OPEN_FOR_WORK)
    assert pipe.store.get_job(job.job_id).status == JobStatus.PROCESSING
    assert run_chunk(pipe, last) == "duplicate"
    assert pipe.store.get_job(job.job_id).status == JobStatus.AGGREGATING
    assert pipe.aggregate_queue.drain() == [{"type": "aggregate", "job_id": job.job_id}]


def test_the_stream_queues_again_the_aggregation_of_a_job_just_claimed():
    """The claimant may die or be throttled between its claim and its send;
    the stream's copy waits, so that it rarely runs beside the claimant's."""
    pipe = memory_pipeline()

    def job(job_id: str, status: JobStatus) -> Job:
        return Job(job_id, "profile", "a.csv", "k", status=status)

    changes = [
        ("processing", job("claimed", JobStatus.AGGREGATING)),
        ("aggregating", job("requeued-by-the-sweeper", JobStatus.AGGREGATING)),
        ("processing", job("counting", JobStatus.PROCESSING)),
        ("aggregating", job("ended", JobStatus.COMPLETED)),
        (None, None),  # not a job's record
    ]
    assert queue_claimed_aggregations(pipe, changes) == 1
    assert pipe.aggregate_queue.drain() == [{"type": "aggregate", "job_id": "claimed"}]
    assert pipe.aggregate_queue.delays == [AGGREGATION_COPY_DELAY_S]


def test_two_aggregations_of_one_job_at_once_end_it_once():
    plain_pipe = memory_pipeline(chunk_bytes=200)
    plain = run_file(plain_pipe, CSV)
    pipe = memory_pipeline(chunk_bytes=200)
    job = dispatched(pipe)
    for body in pipe.work_queue.drain():
        run_chunk(pipe, ChunkTask.from_message(body))
    [message] = pipe.aggregate_queue.drain()  # the claimant's; the stream's copy is the same
    outcomes = at_once(2, lambda: aggregate_job(pipe, message["job_id"]))
    assert sorted(outcomes) == ["completed", "skipped"]
    done = pipe.store.get_job(job.job_id)
    assert result_of(pipe, done) == result_of(plain_pipe, plain)
    assert pipe.store.get_record(job.job_id, FILE_RECORD)["status"] == "success"


def test_the_file_record_goes_with_the_ending_that_won():
    pipe = memory_pipeline(chunk_bytes=200)
    job = run_file(pipe, CSV)
    assert pipe.store.get_record(job.job_id, FILE_RECORD)["row_count"] == 300
    # A late ending (a sweep, a dead-letter handler) changes neither.
    assert fail_job(pipe, job, "s.csv: too late") is None
    record = pipe.store.get_record(job.job_id, FILE_RECORD)
    assert (record["status"], record["row_count"]) == ("success", 300)

    job = new_job(pipe, "s.csv", "profile", {})
    assert fail_job(pipe, job, "s.csv: the upload never came").status == JobStatus.FAILED
    record = pipe.store.get_record(job.job_id, FILE_RECORD)
    assert (record["status"], record["error_message"]) == ("error", "s.csv: the upload never came")
