"""Failure handling on the in-memory pipeline: tolerated chunk failures
(options.max_failed_percent), cancel, retry, the dead-letter handlers and the
sweeper. Each test drives the same service functions the handlers call and
asserts on the state the pipeline leaves."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import processors
from chalicelib.events import run_sqs_batch
from chalicelib.jobs.cancel import cancel_open_job
from chalicelib.jobs.dead_letters import give_up_on_aggregation, give_up_on_chunk
from chalicelib.jobs.dispatch import FanOut, handle_uploaded_object, new_job, store_upload
from chalicelib.jobs.finish import AGGREGATION_RECORD, aggregate_job
from chalicelib.jobs.model import ChunkTask, InputError, JobConflictError, JobStatus, ServiceError
from chalicelib.jobs.pipeline import work_prefix
from chalicelib.jobs.retry import retry_failed_chunks
from chalicelib.jobs.sweeper import Deadlines, sweep_stalled_jobs
from chalicelib.jobs.work import run_chunk
from chalicelib.processors import ChunkResult, Outcome
from tests.support.memory_pipeline import drain, memory_pipeline, run_file

CSV = b"word\n" + b"".join(f"w{i:02d}\n".encode() for i in range(40))  # 4 chunks of 10 rows at 40 bytes


class FlakyProcessor:
    """Fails, for good (a bad file) or for now (throttled), the chunks whose
    first word is listed in `broken` / `throttled`; mend() heals them."""

    name = "flaky"
    chunk_kind = "table"
    row_columns = None
    input_kinds = ("csv",)

    def __init__(self):
        self.broken: set[str] = set()
        self.throttled: set[str] = set()

    def validate_options(self, options):
        return dict(options)

    def process(self, chunk, emit):
        first = str(chunk.frame.iloc[0, 0])
        if first in self.throttled:
            raise ServiceError(f"S3 throttled the read of {first}")
        if first in self.broken:
            raise InputError(f"chunk starting at {first} is unreadable")
        return ChunkResult({"rows": len(chunk.frame)})

    def merge(self, left, right):
        return {"rows": left["rows"] + right["rows"]}

    def finish(self, merged, ctx):
        return Outcome(result={"rows": merged["rows"]})


@pytest.fixture
def flaky(monkeypatch):
    processor = FlakyProcessor()
    monkeypatch.setitem(processors._REGISTRY, "flaky", processor)
    return processor


def start(pipe, options=None, processor="flaky", data=CSV):
    """A job uploaded and split; its chunk messages wait on the work queue."""
    job = new_job(pipe, "words.csv", processor, options or {})
    store_upload(pipe, job, data, "text/csv")
    handle_uploaded_object(pipe, job.source_key)
    return pipe.store.get_job(job.job_id)


def result_of(pipe, job):
    return json.loads(pipe.blobs.get(pipe.store.get_job(job.job_id).result_key))


# -- options.max_failed_percent ----------------------------------------------------

def test_by_default_one_failed_chunk_fails_the_job_and_says_which(flaky):
    flaky.broken = {"w10"}
    pipe = memory_pipeline(chunk_bytes=40)
    job = run_file(pipe, CSV, processor="flaky")
    assert (job.chunks_total, job.chunks_failed) == (4, 1)
    assert job.status == JobStatus.FAILED
    assert job.error == ("data.csv: 1 of 4 chunks failed (25%), more than options.max_failed_percent "
                         "allows (0%): chunk 1: chunk starting at w10 is unreadable")


def test_failed_chunks_up_to_the_tolerated_share_complete_with_errors_listed(flaky):
    flaky.broken = {"w10"}
    pipe = memory_pipeline(chunk_bytes=40)
    job = run_file(pipe, CSV, processor="flaky", options={"max_failed_percent": 25})
    assert job.status == JobStatus.COMPLETED_WITH_ERRORS
    result = result_of(pipe, job)
    assert result["rows"] == 30
    assert result["errors"]["failed_chunks"] == [
        {"chunk": 1, "first_row": 12, "error": "chunk starting at w10 is unreadable"}]


def test_above_the_tolerated_share_the_job_fails(flaky):
    flaky.broken = {"w10", "w20"}
    pipe = memory_pipeline(chunk_bytes=40)
    job = run_file(pipe, CSV, processor="flaky", options={"max_failed_percent": "49.9"})
    assert job.status == JobStatus.FAILED
    assert "2 of 4 chunks failed (50%), more than options.max_failed_percent allows (49.9%)" in job.error
    assert "chunk 1: chunk starting at w10" in job.error and "chunk 2: chunk starting at w20" in job.error


@pytest.mark.parametrize("processor", ["profile", "carbon", "scan", "pages"])
def test_every_processor_takes_max_failed_percent(processor):
    pipe = memory_pipeline()
    job = new_job(pipe, "f.csv", processor, {"max_failed_percent": "12.5"})
    assert job.options["max_failed_percent"] == 12.5
    assert new_job(pipe, "f.csv", processor, {"max_failed_percent": 100}).options["max_failed_percent"] == 100


@pytest.mark.parametrize("value", [-1, 100.5, "lots", True, None, [5]])
def test_max_failed_percent_outside_0_to_100_is_refused_with_its_name(value):
    with pytest.raises(InputError, match=r"options.max_failed_percent must be a number from 0 to 100"):
        new_job(memory_pipeline(), "f.csv", "profile", {"max_failed_percent": value})


# -- cancel --------------------------------------------------------------------------

def test_a_cancelled_job_starts_no_chunk_and_loses_its_work_files(flaky):
    pipe = memory_pipeline(chunk_bytes=40)
    job = start(pipe)
    messages = pipe.work_queue.drain()
    run_chunk(pipe, ChunkTask.from_message(messages[0]))
    assert any(k.startswith(work_prefix(job.job_id)) for k in pipe.blobs.objects)

    cancelled = cancel_open_job(pipe, pipe.store.get_job(job.job_id))
    assert cancelled.status == JobStatus.CANCELLED and cancelled.finished_at
    assert not any(k.startswith(work_prefix(job.job_id)) for k in pipe.blobs.objects)
    assert [run_chunk(pipe, ChunkTask.from_message(m)) for m in messages[1:]] == ["closed"] * 3
    after = pipe.store.get_job(job.job_id)
    assert (after.status, after.chunks_done) == (JobStatus.CANCELLED, 1)
    assert not pipe.aggregate_queue.messages
    assert not any(k.startswith(work_prefix(job.job_id)) for k in pipe.blobs.objects)
    assert pipe.store.get_record(job.job_id, "FILE")["status"] == "error"


def test_a_cancel_while_splitting_stops_the_sending_and_its_files(flaky, monkeypatch, caplog):
    monkeypatch.setattr(FanOut, "STATUS_CHECK_SECONDS", 0)  # a long plan, as far as the checks go
    pipe = memory_pipeline(chunk_bytes=40)
    job = new_job(pipe, "words.csv", "flaky", {})
    store_upload(pipe, job, b"word\n" + b"".join(f"w{i:03d}\n".encode() for i in range(200)), "text/csv")
    send_all = pipe.work_queue.send_all

    def cancelled_after_the_first_send(messages):
        send_all(messages)
        if pipe.store.get_job(job.job_id).status == JobStatus.SPLITTING:
            cancel_open_job(pipe, pipe.store.get_job(job.job_id))
            # A chunk file written after the cancel's clean-up (Excel and zip plans write them).
            pipe.blobs.put(f"{work_prefix(job.job_id)}chunks/000009.csv", b"w090\n", "text/csv")

    pipe.work_queue.send_all = cancelled_after_the_first_send
    with caplog.at_level("INFO"):
        handle_uploaded_object(pipe, job.source_key)

    # The first chunk went before the cancel; nothing after it.
    assert len(pipe.work_queue.drain()) == 1
    assert len(pipe.store.list_chunks(job.job_id)) == 1
    after = pipe.store.get_job(job.job_id)
    assert (after.status, after.error) == (JobStatus.CANCELLED, "the job was cancelled")
    assert not any(k.startswith(work_prefix(job.job_id)) for k in pipe.blobs.objects)
    assert "dispatch stopped: the job was cancelled while splitting" in caplog.text


def test_a_final_job_cannot_be_cancelled(flaky):
    pipe = memory_pipeline()
    job = run_file(pipe, CSV, processor="flaky")
    with pytest.raises(JobConflictError, match="is already completed; only a job that has not ended"):
        cancel_open_job(pipe, job)
    assert pipe.store.get_job(job.job_id).status == JobStatus.COMPLETED


# -- retry ---------------------------------------------------------------------------

def test_a_retry_runs_the_failed_chunks_again_and_the_job_completes(flaky):
    flaky.broken = {"w10", "w30"}
    pipe = memory_pipeline(chunk_bytes=40)
    job = run_file(pipe, CSV, processor="flaky", options={"max_failed_percent": 50})
    assert (job.status, job.chunks_failed) == (JobStatus.COMPLETED_WITH_ERRORS, 2)

    flaky.broken = set()  # the cause is fixed
    reopened, sent = retry_failed_chunks(pipe, job)
    assert sent == 2
    assert (reopened.status, reopened.chunks_done, reopened.chunks_failed) == (JobStatus.PROCESSING, 2, 0)
    assert reopened.error is None and reopened.finished_at is None
    resent = [m["chunk"] for m in pipe.work_queue.messages]
    assert resent == [1, 3]
    chunks = {c["index"]: c for c in pipe.store.list_chunks(job.job_id)}
    assert chunks[1]["status"] == "pending" and "error" not in chunks[1]
    assert chunks[1]["last_error"] == "chunk starting at w10 is unreadable"

    drain(pipe)
    done = pipe.store.get_job(job.job_id)
    assert (done.status, done.chunks_done, done.chunks_failed) == (JobStatus.COMPLETED, 4, 0)
    assert done.rows_done == 40
    assert result_of(pipe, done) == {"rows": 40}


def test_a_failed_job_is_retried_too_and_a_second_retry_at_once_is_refused(flaky):
    flaky.broken = {"w00"}
    pipe = memory_pipeline(chunk_bytes=40)
    job = run_file(pipe, CSV, processor="flaky")
    assert job.status == JobStatus.FAILED
    retry_failed_chunks(pipe, job)
    with pytest.raises(JobConflictError, match="is processing now; it is being retried already"):
        retry_failed_chunks(pipe, job)  # the caller's stale copy still says failed
    assert len(pipe.work_queue.messages) == 1


@pytest.mark.parametrize("case, reason", [
    ("running", "is processing; only a job that has ended can be retried"),
    ("completed", "completed without failed chunks; there is nothing to retry"),
    ("cancelled", "was cancelled and its work files removed"),
    ("row errors only", "has no failed chunks to retry"),
    ("failed before its chunks", "has no failed chunks to retry: it failed before any chunk ran"),
    ("too old", "older than 6 day(s), the time its work files are kept for a retry"),
])
def test_a_retry_is_refused_with_the_reason(flaky, case, reason):
    pipe = memory_pipeline(chunk_bytes=40)
    if case == "running":
        job = start(pipe)
    elif case == "completed":
        job = run_file(pipe, CSV, processor="flaky")
    elif case == "cancelled":
        job = cancel_open_job(pipe, start(pipe))
    elif case == "row errors only":
        job = run_file(pipe, b"a,b\n1,2\n3,4,5\n6,7\n")
        assert job.status == JobStatus.COMPLETED_WITH_ERRORS
    elif case == "failed before its chunks":
        job = run_file(pipe, b"a,b\n")
        assert job.status == JobStatus.FAILED
    else:
        flaky.broken = {"w00"}
        job = run_file(pipe, CSV, processor="flaky")
        job.created_at = (datetime.now(UTC) - timedelta(days=6, hours=1)).isoformat()
    with pytest.raises(JobConflictError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        retry_failed_chunks(pipe, job)


# -- dead letters ----------------------------------------------------------------------

def test_a_chunk_the_queue_gave_up_on_fails_with_its_last_error_and_the_job_ends(flaky):
    flaky.throttled = {"w20"}
    pipe = memory_pipeline(chunk_bytes=40)
    job = start(pipe, {"max_failed_percent": 25})
    messages = {m["chunk"]: m for m in pipe.work_queue.drain()}
    for index in (0, 1, 3):
        assert run_chunk(pipe, ChunkTask.from_message(messages[index])) == "done"
    for _ in range(5):  # every delivery the queue allows
        with pytest.raises(ServiceError):
            run_chunk(pipe, ChunkTask.from_message(messages[2]))
    chunk = pipe.store.get_chunk(job.job_id, 2)
    assert (chunk["status"], chunk["attempts"]) == ("pending", 5)
    assert chunk["last_error"] == "ServiceError: S3 throttled the read of w20"

    # The work DLQ's handler, with a batch: this chunk, one already done, one of no job.
    unknown = {**messages[0], "job_id": "no-such-job"}
    batch = [_record(m, f"m{i}") for i, m in enumerate([messages[2], messages[0], unknown])]
    assert run_sqs_batch(batch, lambda body: give_up_on_chunk(pipe, body)) == {"batchItemFailures": []}
    failed = pipe.store.get_chunk(job.job_id, 2)
    assert failed["status"] == "failed"
    assert failed["error"] == "gave up after 5 deliveries: ServiceError: S3 throttled the read of w20"
    drain(pipe)
    done = pipe.store.get_job(job.job_id)
    assert (done.status, done.chunks_done, done.chunks_failed) == (JobStatus.COMPLETED_WITH_ERRORS, 3, 1)
    assert result_of(pipe, done)["errors"]["failed_chunks"][0]["error"].startswith("gave up after 5")
    assert give_up_on_chunk(pipe, messages[2]) == "settled"  # the DLQ delivers twice too


def test_an_aggregation_the_queue_gave_up_on_fails_the_job_with_its_last_error(flaky, monkeypatch):
    pipe = memory_pipeline(chunk_bytes=40)
    job = start(pipe)
    for body in pipe.work_queue.drain():
        run_chunk(pipe, ChunkTask.from_message(body))
    [aggregation] = pipe.aggregate_queue.drain()
    monkeypatch.setattr(flaky, "finish", _raise(ServiceError("S3 put failed: SlowDown")))
    with pytest.raises(ServiceError):
        aggregate_job(pipe, job.job_id)
    assert pipe.store.get_record(job.job_id, AGGREGATION_RECORD)["last_error"] == \
        "ServiceError: S3 put failed: SlowDown"

    assert give_up_on_aggregation(pipe, aggregation) == "failed"
    failed = pipe.store.get_job(job.job_id)
    assert failed.status == JobStatus.FAILED
    assert failed.error == ("words.csv: the aggregation was given up after 5 deliveries: "
                            "ServiceError: S3 put failed: SlowDown")
    assert give_up_on_aggregation(pipe, aggregation) == "skipped"


def test_a_batch_reports_only_the_message_that_failed():
    seen = []

    def handle(body):
        seen.append(body["n"])
        if body["n"] == 2:
            raise ServiceError("throttled")

    batch = [_record({"n": n}, f"id-{n}") for n in (1, 2, 3)] + [_Record("not json", "id-bad")]
    assert run_sqs_batch(batch, handle) == {"batchItemFailures": [{"itemIdentifier": "id-2"}]}
    assert seen == [1, 2, 3]


# -- the sweeper -------------------------------------------------------------------------

def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_fresh_jobs_are_left_alone(flaky):
    pipe = memory_pipeline(chunk_bytes=40)
    start(pipe)
    report = sweep_stalled_jobs(pipe)
    assert report.looked_at == 1 and not report.actions
    assert len(pipe.work_queue.messages) == 4


def test_a_job_whose_file_never_came_fails(flaky):
    pipe = memory_pipeline(presign_seconds=600)
    job = new_job(pipe, "never.csv", "flaky", {})
    sweep_stalled_jobs(pipe, later(1100))
    assert pipe.store.get_job(job.job_id).status == JobStatus.RECEIVED
    sweep_stalled_jobs(pipe, later(1300))
    failed = pipe.store.get_job(job.job_id)
    assert failed.status == JobStatus.FAILED
    assert failed.error == ("never.csv: no file arrived within 20 min of the job's creation "
                            "(its upload link had expired)")
    assert pipe.store.list_open_jobs() == []


def test_a_job_whose_dispatcher_died_while_splitting_fails(flaky):
    pipe = memory_pipeline()
    job = new_job(pipe, "big.csv", "flaky", {})
    pipe.store.transition(job.job_id, ["received"], "splitting")
    sweep_stalled_jobs(pipe, later(900 + 299))
    assert pipe.store.get_job(job.job_id).status == JobStatus.SPLITTING
    sweep_stalled_jobs(pipe, later(900 + 301))
    assert pipe.store.get_job(job.job_id).error == (
        "big.csv: splitting the file did not finish within 20 min (the dispatcher timed out or was "
        "stopped); submit the file again")


def test_lost_chunks_are_sent_again_then_failed_as_lost(flaky):
    pipe = memory_pipeline(chunk_bytes=40, sweep_resends=2)
    job = start(pipe, {"max_failed_percent": 50})
    messages = pipe.work_queue.drain()
    for body in messages[:3]:
        run_chunk(pipe, ChunkTask.from_message(body))
    # Chunk 3's message is lost: nothing moves any more.
    stalled = Deadlines.from_settings(pipe.settings).processing
    assert stalled == 6 * 360
    assert not sweep_stalled_jobs(pipe, later(stalled - 60)).actions
    for resend in (1, 2):
        report = sweep_stalled_jobs(pipe, later(stalled + 60))
        assert report.actions == {"chunks re-sent": 1}
        assert pipe.work_queue.drain() == [messages[3]]  # the very message, from the chunk's record
        assert pipe.store.get_job(job.job_id).sweeps == {"processing": resend}
    report = sweep_stalled_jobs(pipe, later(stalled + 60))
    assert report.actions == {"chunks failed as lost": 1}
    chunk = pipe.store.get_chunk(job.job_id, 3)
    assert chunk["error"] == "lost: no worker settled it in 1 h 48 min (2 re-sends)"
    drain(pipe)
    assert pipe.store.get_job(job.job_id).status == JobStatus.COMPLETED_WITH_ERRORS
    # A late delivery of the lost message changes nothing.
    assert run_chunk(pipe, ChunkTask.from_message(messages[3])) == "closed"


def test_a_processing_job_whose_aggregation_never_started_is_started(flaky):
    pipe = memory_pipeline(chunk_bytes=40)
    job = start(pipe)
    drain(pipe)
    pipe.store.transition(job.job_id, ["completed"], "processing")  # as if the claim had died
    assert sweep_stalled_jobs(pipe).actions == {"aggregation started": 1}
    drain(pipe)
    assert pipe.store.get_job(job.job_id).status == JobStatus.COMPLETED


def test_a_stalled_aggregation_is_queued_again_once_then_the_job_fails(flaky):
    pipe = memory_pipeline(chunk_bytes=40)
    job = start(pipe)
    for body in pipe.work_queue.drain():
        run_chunk(pipe, ChunkTask.from_message(body))
    assert pipe.aggregate_queue.drain() == [{"type": "aggregate", "job_id": job.job_id}]
    # The aggregator died and its message is gone.
    assert sweep_stalled_jobs(pipe, later(1800 + 1)).actions == {"aggregation re-queued": 1}
    assert pipe.aggregate_queue.messages == [{"type": "aggregate", "job_id": job.job_id}]
    assert not sweep_stalled_jobs(pipe, later(1000)).actions  # the clock started again
    assert sweep_stalled_jobs(pipe, later(1800 + 1)).actions == {"failed": 1}
    failed = pipe.store.get_job(job.job_id)
    assert failed.error == "words.csv: the aggregation did not finish within 30 min, even once re-queued"
    assert aggregate_job(pipe, job.job_id) == "skipped"


# -- helpers ---------------------------------------------------------------------------

class _Record:
    """An SQS record as Chalice hands it to a handler, with its own message id."""

    def __init__(self, body: str, message_id: str):
        self.body = body
        self._id = message_id

    def to_dict(self):
        return {"messageId": self._id, "body": self.body}


def _record(body: dict, message_id: str) -> _Record:
    return _Record(json.dumps(body), message_id)


def _raise(exc):
    def fail(*args, **kwargs):
        raise exc
    return fail
