"""The pipeline's promises on the in-memory fakes: redelivery and reordering
change nothing, aggregation starts exactly once, and a chunk count is exact."""
from __future__ import annotations

import json
import threading

from chalicelib.jobs.finish import aggregate_job
from chalicelib.jobs.lifecycle import start_aggregation_if_done
from chalicelib.jobs.model import ChunkTask, JobStatus
from chalicelib.jobs.work import run_chunk
from tests.support.memory_pipeline import drain, memory_pipeline, run_file

CSV = b"id,score,when\n" + b"".join(
    f"{i},{i * 1.5 if i % 7 else 'bad'},2024-01-{1 + i % 28:02d}\n".encode() for i in range(1, 301)
)


def result_of(pipe, job):
    return json.loads(pipe.blobs.get(job.result_key))


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
    assert run_chunk(pipe, again) == "duplicate"
    assert pipe.store.get_job(job.job_id).rows_done == 300


def test_aggregation_starts_exactly_once_under_a_race():
    pipe = memory_pipeline(chunk_bytes=200)
    from chalicelib.jobs.dispatch import handle_uploaded_object, new_job, store_upload

    job = new_job(pipe, "race.csv", "profile", {})
    store_upload(pipe, job, CSV, "text/csv")
    handle_uploaded_object(pipe, job.source_key)
    for body in pipe.work_queue.drain():
        run_chunk(pipe, ChunkTask.from_message(body))
    # run_chunk already claimed it; reset the claim to race many finishers for it.
    assert len(pipe.aggregate_queue.drain()) == 1
    pipe.store.transition(job.job_id, ["aggregating"], "processing")

    barrier = threading.Barrier(16)
    wins = []

    def finisher():
        barrier.wait()
        wins.append(start_aggregation_if_done(pipe, job.job_id))

    threads = [threading.Thread(target=finisher) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1
    messages = pipe.aggregate_queue.drain()
    assert messages == [{"type": "aggregate", "job_id": job.job_id}]
    assert aggregate_job(pipe, job.job_id) == "completed"
    assert aggregate_job(pipe, job.job_id) == "skipped"  # a redelivered aggregation message


def test_status_moves_through_the_documented_states():
    pipe = memory_pipeline(chunk_bytes=200)
    from chalicelib.jobs.dispatch import handle_uploaded_object, new_job, store_upload

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
    from chalicelib import processors

    monkeypatch.setitem(processors._REGISTRY, "exploding", ExplodingProcessor())
    pipe = memory_pipeline(chunk_bytes=30)
    data = b"word\n" + b"".join(f"w{i}\n".encode() for i in range(20)) + b"boom\n"
    job = run_file(pipe, data, processor="exploding")
    assert job.status == JobStatus.COMPLETED_WITH_ERRORS
    assert job.chunks_failed == 1
    errors = result_of(pipe, job)["errors"]["failed_chunks"]
    assert errors[0]["error"] == "the file could not be read (ZeroDivisionError: division by zero)"
    # Only the failed chunk's rows are lost; every other chunk counts.
    assert result_of(pipe, job)["rows"] == job.rows_done >= 21 - 4
