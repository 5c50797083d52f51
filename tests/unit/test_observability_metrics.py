"""Metrics in CloudWatch's embedded metric format: every line valid against
the EMF specification, one per chunk and one per job ending, whose figures
add up to the jobs' own counts; and the local file GET /metrics sums, per
tenant, to the same figures."""
from __future__ import annotations

import dataclasses
import io
import json
import math
import time
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from chalice import Chalice

from chalicelib import api, observability
from chalicelib.jobs.dead_letters import give_up_on_chunk
from chalicelib.jobs.dispatch import handle_uploaded_object, new_job, store_upload
from chalicelib.jobs.model import ChunkTask, Job, JobStatus, ServiceError
from chalicelib.jobs.sweeper import Deadlines, sweep_stalled_jobs
from chalicelib.jobs.work import run_chunk
from chalicelib.observability import metrics
from tests.support.memory_pipeline import drain, memory_pipeline, run_file

# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
EMF_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}


def assert_valid_emf(line: str) -> dict:
    """One log event that CloudWatch Logs turns into metrics, per the EMF
    specification: a JSON object and nothing else, `_aws` with a millisecond
    Timestamp and MetricDirectives, every dimension a top-level string member,
    every metric a top-level number (or array of numbers) with a valid unit."""
    assert "\n" not in line.rstrip("\n"), "one line per event"
    document = json.loads(line)
    assert isinstance(document, dict)
    meta = document["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_500_000_000_000
    directives = meta["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for directive in directives:
        assert isinstance(directive["Namespace"], str) and 0 < len(directive["Namespace"]) <= 1024
        assert isinstance(directive["Dimensions"], list)
        for dimension_set in directive["Dimensions"]:
            assert isinstance(dimension_set, list) and len(dimension_set) <= 30
            for name in dimension_set:
                value = document[name]
                assert isinstance(value, str) and value.strip() and value.isascii() and len(value) <= 1024
        assert 0 < len(directive["Metrics"]) <= 100
        for definition in directive["Metrics"]:
            assert set(definition) <= {"Name", "Unit", "StorageResolution"}
            assert isinstance(definition["Name"], str) and 0 < len(definition["Name"]) <= 1024
            assert definition.get("Unit", "None") in EMF_UNITS
            assert definition.get("StorageResolution", 60) in (1, 60)
            values = document[definition["Name"]]
            values = values if isinstance(values, list) else [values]
            assert 0 < len(values) <= 100
            for value in values:
                assert isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return document


def emitted(out: str) -> list[dict]:
    """The EMF records among the lines written to stdout, each validated."""
    return [assert_valid_emf(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def total(records: list[dict], name: str, **where) -> float:
    return sum(r[name] for r in records if name in r and all(r.get(k) == v for k, v in where.items()))


def _csv(rows: int) -> bytes:
    return ("name,amount,when\n" + "".join(f"n{i},{i * 1.5},2024-01-{1 + i % 28:02d}\n"
                                           for i in range(rows))).encode()


def _zip(documents: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in documents.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_every_chunk_and_job_ending_is_one_valid_emf_line_whose_figures_add_up(capsys):
    pipe = memory_pipeline(chunk_bytes=512)
    # Every message delivered twice: a duplicate is never counted twice.
    profiled = run_file(pipe, _csv(300), processor="profile", duplicate=True)
    docs = {f"doc{i}.txt": f"see HOLE-{i % 3}".encode() for i in range(25)}
    scanned = run_file(pipe, _zip(docs), filename="docs.zip", processor="scan",
                       options={"target_hole_codes": ["HOLE-1", "HOLE-2"]})
    records = emitted(capsys.readouterr().out)

    chunks = [r for r in records if r["event"] == "chunk"]
    assert {r["_aws"]["CloudWatchMetrics"][0]["Namespace"] for r in records} == {"Sluice"}
    assert all(r["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage", "Processor"], ["Stage"]]
               for r in records)
    assert profiled.chunks_total > 1 and scanned.chunks_total > 1
    for job, counted in ((profiled, "ChunkRows"), (scanned, "ChunkItems")):
        mine = [r for r in chunks if r["job_id"] == job.job_id]
        assert len(mine) == job.chunks_total * (2 if job is profiled else 1)
        assert total(mine, "ChunksProcessed") == job.chunks_done
        assert total(mine, counted) == job.rows_done
        assert all(r["Processor"] == job.processor and r["tenant"] == "default" for r in mine)
        assert all(r["ChunkDuration"] >= 0 for r in mine)
    assert profiled.rows_done == 300 and scanned.rows_done == 25
    # The second copies found their chunks counted, or the job gone on to aggregate.
    again = [r for r in chunks if r["outcome"] in ("duplicate", "closed")]
    assert len(again) == profiled.chunks_total
    assert all(r["ChunksProcessed"] == 0 and "ChunkRows" not in r for r in again)


def _one_chunk(pipe):
    """A small job, planned: the job and the message of its one chunk."""
    job = new_job(pipe, "a.csv", "profile", {})
    store_upload(pipe, job, _csv(3), "text/csv")
    handle_uploaded_object(pipe, job.source_key)
    [task] = pipe.work_queue.drain()
    return job, task


def test_a_failed_chunk_and_an_error_are_counted_as_such(capsys):
    pipe = memory_pipeline()
    job, task = _one_chunk(pipe)
    del pipe.blobs.objects[job.source_key]  # unreadable: the chunk fails for good
    assert run_chunk(pipe, ChunkTask.from_message(task)) == "failed"

    broken = memory_pipeline()
    broken.store.get_job = _raise_throttle  # the store is down: the message will come again
    with pytest.raises(ServiceError):
        run_chunk(broken, ChunkTask.from_message(task))

    failed, errored = emitted(capsys.readouterr().out)
    assert (failed["outcome"], failed["ChunksFailed"], failed["ChunksProcessed"]) == ("failed", 1, 0)
    assert (errored["outcome"], errored["ChunkErrors"], errored["ChunksFailed"]) == ("error", 1, 0)


def _raise_throttle(job_id):
    raise ServiceError("the store is throttling")


def _ending(status: JobStatus, before: str | None, created: str, finished: str | None) -> tuple:
    job = Job(job_id=f"j-{status.value}", processor="carbon", filename="a.csv", source_key="k",
              status=status, tenant="acme", rows_done=17, created_at=created, finished_at=finished)
    return before, job


def test_each_job_that_ends_is_one_record_with_its_duration(capsys):
    pipe = memory_pipeline()
    changes = [
        _ending(JobStatus.COMPLETED, "aggregating", "2026-01-01T10:00:00.000Z", "2026-01-01T10:00:42.500Z"),
        _ending(JobStatus.COMPLETED_WITH_ERRORS, "aggregating", "2026-01-01T10:00:00.000Z",
                "2026-01-01T10:01:00.000Z"),
        _ending(JobStatus.FAILED, "processing", "2026-01-01T10:00:00.000Z", "2026-01-01T10:00:01.000Z"),
        _ending(JobStatus.CANCELLED, None, "2026-01-01T10:00:00.000Z", "2026-01-01T10:00:02.000Z"),
        # A later write to a job already final (its FILE record, a TTL) is no new ending.
        _ending(JobStatus.COMPLETED, "completed", "2026-01-01T10:00:00.000Z", "2026-01-01T10:00:42.500Z"),
        (None, None),
        _ending(JobStatus.PROCESSING, "splitting", "2026-01-01T10:00:00.000Z", None),
    ]
    assert metrics.record_job_endings(pipe, changes) == 4
    records = emitted(capsys.readouterr().out)
    assert [(r["status"], r["JobsCompleted"], r["JobsFailed"], r["JobsCancelled"], r["JobDuration"])
            for r in records] == [("completed", 1, 0, 0, 42.5), ("completed_with_errors", 1, 0, 0, 60.0),
                                  ("failed", 0, 1, 0, 1.0), ("cancelled", 0, 0, 1, 2.0)]
    assert all(r["_aws"]["CloudWatchMetrics"][0]["Metrics"][0] == {"Name": "JobDuration", "Unit": "Seconds"}
               for r in records)
    assert all((r["tenant"], r["Processor"], r["Stage"]) == ("acme", "carbon", "local") for r in records)


def test_queue_lag_runs_from_the_messages_sent_timestamp_to_its_invocation(capsys):
    pipe = memory_pipeline()
    _, task = _one_chunk(pipe)
    app = Chalice(app_name="metrics-test")
    observability.configure(app)

    @app.on_sqs_message(queue="work", batch_size=1)
    def handle_work_message(event):
        for record in event:
            run_chunk(pipe, ChunkTask.from_message(json.loads(record.body)))

    sent = int(time.time() * 1000) - 4000  # sent four seconds ago
    app.handler_map["handle_work_message"]({"Records": [{
        "messageId": "m-1", "receiptHandle": "r", "body": json.dumps(task), "md5OfBody": "",
        "attributes": {"SentTimestamp": str(sent), "ApproximateFirstReceiveTimestamp": str(sent + 10)},
        "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work"}]}, None)

    [chunk] = emitted(capsys.readouterr().out)
    assert 4000 <= chunk["QueueLag"] < 14000
    assert {"Name": "QueueLag", "Unit": "Milliseconds"} in chunk["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    # Outside an SQS invocation (tests, the in-memory drain) there is no lag to tell.
    drain(pipe)
    assert all("QueueLag" not in r for r in emitted(capsys.readouterr().out))


# -- the local view of GET /metrics ----------------------------------------------------

def test_the_local_file_holds_the_same_lines_and_sums_to_each_tenants_figures(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    pipe = memory_pipeline(chunk_bytes=512, metrics_file=str(path))
    jobs = []
    for tenant, rows in (("acme", 120), ("acme", 80), ("other", 50)):
        job = new_job(pipe, "a.csv", "profile", {}, tenant=tenant)
        store_upload(pipe, job, _csv(rows), "text/csv")
        handle_uploaded_object(pipe, job.source_key)
        drain(pipe)
        jobs.append(pipe.store.get_job(job.job_id))
    metrics.record_job_endings(pipe, [("aggregating", job) for job in jobs])

    printed = capsys.readouterr().out
    emf_lines = [line + "\n" for line in printed.splitlines() if line.startswith('{"_aws"')]
    assert path.read_text() == "".join(emf_lines)
    status, figures = api.get_metrics(pipe, "acme")
    assert status == 200 and figures["source"] == "local" and figures["tenant"] == "acme"
    acme = [job for job in jobs if job.tenant == "acme"]
    shown = figures["metrics"]
    assert shown["ChunkRows"]["Sum"] == 200 == sum(job.rows_done for job in acme)
    assert shown["ChunksProcessed"]["Sum"] == sum(job.chunks_done for job in acme)
    assert shown["ChunkDuration"]["SampleCount"] == sum(job.chunks_total for job in acme)
    assert shown["ChunkDuration"]["Unit"] == "Milliseconds"
    assert shown["JobsCompleted"] == {"Unit": "Count", "SampleCount": 2, "Sum": 2, "Minimum": 1,
                                      "Maximum": 1, "Average": 1.0}
    assert figures["by_processor"]["profile"]["ChunkRows"]["Sum"] == 200
    assert api.get_metrics(pipe, "other")[1]["metrics"]["ChunkRows"]["Sum"] == 50
    assert api.get_metrics(pipe, "nobody")[1]["metrics"] == {}


def test_a_metric_that_cannot_be_written_never_fails_the_chunk(tmp_path, caplog):
    pipe = memory_pipeline(metrics_file=str(tmp_path / "gone" / "metrics.jsonl"))
    _, task = _one_chunk(pipe)
    assert run_chunk(pipe, ChunkTask.from_message(task)) == "done"
    assert "a metric record could not be written" in caplog.text


def test_a_line_still_being_written_is_left_for_the_next_read(tmp_path):
    path = tmp_path / "metrics.jsonl"
    settings = dataclasses.replace(memory_pipeline().settings, metrics_file=str(path))
    whole = metrics.record({"ChunkRows": 5}, {"Stage": "local", "Processor": "profile"}, {"tenant": "t"})
    path.write_text(json.dumps(whole) + "\n" + json.dumps(whole)[:40])
    assert metrics.figures(settings, "t")["metrics"]["ChunkRows"]["Sum"] == 5


def test_on_aws_the_route_points_to_cloudwatch_and_shows_no_figures():
    status, answer = api.get_metrics(memory_pipeline(stage="prod"), "acme")
    assert status == 200
    assert answer["source"] == "cloudwatch" and answer["namespace"] == "Sluice"
    assert answer["dimensions"] == [["Stage", "Processor"], ["Stage"]]
    assert answer["metrics"]["QueueLag"] == "Milliseconds"
    assert "namespace=~'Sluice" in answer["links"]["metrics"]
    assert "Sum" not in json.dumps(answer)


def test_chunks_given_up_by_the_dead_letter_handler_or_the_sweeper_count_as_failed(capsys):
    pipe = memory_pipeline(chunk_bytes=40, sweep_resends=0)
    job = new_job(pipe, "a.csv", "profile", {"max_failed_percent": 100})
    store_upload(pipe, job, _csv(12), "text/csv")
    handle_uploaded_object(pipe, job.source_key)
    messages = pipe.work_queue.drain()
    assert len(messages) >= 3
    capsys.readouterr()
    # The first: its deliveries ran out; the second and third: never delivered at all.
    assert give_up_on_chunk(pipe, messages[0]) == "failed"
    assert give_up_on_chunk(pipe, messages[0]) == "settled"  # the DLQ delivers twice too
    for body in messages[3:]:
        run_chunk(pipe, ChunkTask.from_message(body))
    stalled = Deadlines.from_settings(pipe.settings).processing
    sweep_stalled_jobs(pipe, datetime.now(UTC) + timedelta(seconds=stalled + 60))
    records = emitted(capsys.readouterr().out)

    given_up = [r for r in records if r.get("given_up_by")]
    assert [(r["given_up_by"], r["ChunksFailed"]) for r in given_up] == [
        ("work dead-letter queue", 1), ("sweeper", 2)]
    assert all((r["job_id"], r["tenant"], r["Processor"]) == (job.job_id, "default", "profile")
               for r in given_up)
    drain(pipe)
    assert total(emitted(capsys.readouterr().out) + records, "ChunksFailed") == \
        pipe.store.get_job(job.job_id).chunks_failed == 3
