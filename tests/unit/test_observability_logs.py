"""Structured logs: every line one JSON object that names its job, chunk,
processor and tenant, set once where the work starts; scoped to that work on
nested calls, threads and warm invocations; and never a key, a bearer token,
the callback secret or a byte of the documents."""
from __future__ import annotations

import io
import json
import logging
import threading
import time
import zipfile

import pytest
from chalice import Chalice

from chalicelib import observability
from chalicelib.jobs.dispatch import handle_uploaded_object, new_job, store_upload
from chalicelib.jobs.model import ChunkTask
from chalicelib.jobs.work import run_chunk
from chalicelib.observability import logs
from chalicelib.observability.logs import JsonFormatter, Redactor, bind, carry, log_context
from tests.support.memory_pipeline import drain, memory_pipeline, run_file

SECRET = "whsec-test-callback-secret-0123456789"
API_KEY = "slk_" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7dEf0hIj3"


class Lines:
    """What the root logger writes through the JSON formatter, as parsed lines."""

    def __init__(self, handler: logging.StreamHandler):
        self._handler = handler

    @property
    def text(self) -> str:
        return self._handler.stream.getvalue()

    def all(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]

    def messages(self, **fields) -> list[dict]:
        return [line for line in self.all() if all(line.get(k) == v for k, v in fields.items())]


@pytest.fixture
def lines():
    """JSON lines of everything logged at DEBUG and above during the test."""
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter(Redactor([SECRET])))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield Lines(handler)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _failing_chunk_job(tenant: str = "acme"):
    """A job whose one chunk cannot be read: its source vanished after planning."""
    pipe = memory_pipeline()
    job = new_job(pipe, "sales.csv", "profile", {}, tenant=tenant)
    store_upload(pipe, job, b"name,amount\nann,1\nbob,2\n", "text/csv")
    handle_uploaded_object(pipe, job.source_key)
    del pipe.blobs.objects[job.source_key]
    return pipe, job


def test_a_chunk_logs_json_lines_that_name_its_job_chunk_processor_and_tenant(lines):
    pipe, job = _failing_chunk_job()
    [task] = pipe.work_queue.drain()
    assert run_chunk(pipe, ChunkTask.from_message(task)) == "failed"

    logged = lines.messages(logger="chalicelib.jobs.work")
    assert [line["level"] for line in logged] == ["ERROR", "WARNING"]
    for line in logged:
        assert line["job_id"] == job.job_id
        assert line["chunk"] == 0
        assert line["processor"] == "profile"
        assert line["tenant"] == "acme"
        assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]
    assert "Traceback" in logged[0]["exception"]
    assert logged[1]["message"].startswith("chunk failed: the file could not be read")


def test_every_line_has_the_context_fields_even_outside_any_work(lines):
    logging.getLogger("tests.observability").info("plain %s", "words")
    [line] = lines.all()
    assert line == {"timestamp": line["timestamp"], "level": "INFO", "logger": "tests.observability",
                    "message": "plain words", "job_id": None, "chunk": None, "processor": None,
                    "tenant": None}


def test_the_aggregation_and_the_dispatch_carry_the_job_they_work_on(lines):
    pipe = memory_pipeline()
    # Every row rejected: the aggregation fails the job, and says so in the log.
    job = run_file(pipe, b"Activity,Quantity,Unit\nunobtainium,1,kWh\n", filename="a.csv", processor="carbon")
    assert job.status == "failed"
    [failed] = lines.messages(message="job failed")
    assert (failed["job_id"], failed["processor"], failed["chunk"]) == (job.job_id, "carbon", None)
    assert failed["tenant"] == "default"


def test_nested_contexts_add_fields_and_give_them_back():
    log = logging.getLogger("tests.observability")
    with log_context(job_id="j1", tenant="t1"):
        with log_context(chunk=3, processor="profile"):
            assert dict(logs.current_context()) == {"job_id": "j1", "tenant": "t1", "chunk": 3,
                                                    "processor": "profile"}
            bind(tenant="t2")
            assert logs.current_context()["tenant"] == "t2"
        # What the inner block added or bound is gone with it.
        assert dict(logs.current_context()) == {"job_id": "j1", "tenant": "t1"}
        log.info("still the job")
    assert dict(logs.current_context()) == {}


def test_a_context_ends_with_its_block_even_when_the_block_raises():
    with pytest.raises(RuntimeError), log_context(job_id="j1"):
        raise RuntimeError("boom")
    assert dict(logs.current_context()) == {}


def test_a_new_thread_starts_without_the_context_unless_it_is_carried(lines):
    log = logging.getLogger("tests.observability")

    def work(name):
        log.info(name)

    with log_context(job_id="j1", chunk=0):
        plain = threading.Thread(target=work, args=("plain thread",))
        carried = threading.Thread(target=carry(work), args=("carried",))
        for thread in (plain, carried):
            thread.start()
            thread.join()
    assert lines.messages(message="plain thread")[0]["job_id"] is None
    assert lines.messages(message="carried")[0]["job_id"] == "j1"
    assert lines.messages(message="carried")[0]["chunk"] == 0


def test_threads_working_at_once_never_see_each_others_context(lines):
    log = logging.getLogger("tests.observability")
    both_inside = threading.Barrier(2)

    def work(job_id):
        with log_context(job_id=job_id, tenant=f"tenant-{job_id}"):
            both_inside.wait(5)  # both contexts are set before either logs
            log.info("working on %s", job_id)
            both_inside.wait(5)

    threads = [threading.Thread(target=work, args=(job_id,)) for job_id in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for job_id in ("a", "b"):
        [line] = lines.messages(message=f"working on {job_id}")
        assert (line["job_id"], line["tenant"]) == (job_id, f"tenant-{job_id}")


def _sqs_event(body: dict, message_id: str) -> dict:
    sent = str(int(time.time() * 1000))
    return {"Records": [{"messageId": message_id, "receiptHandle": "r", "body": json.dumps(body),
                         "attributes": {"SentTimestamp": sent}, "messageAttributes": {},
                         "md5OfBody": "", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work",
                         "awsRegion": "us-east-1"}]}


class _LambdaContext:
    function_name = "sluice-dev-handle_work_message"

    def __init__(self, request_id: str):
        self.aws_request_id = request_id


def test_a_warm_lambda_never_lends_one_invocations_context_to_the_next(lines):
    """Two invocations in one process, as a warm Lambda runs them: the first
    works on a chunk, the second on nothing; each line names its own."""
    pipe, job = _failing_chunk_job()
    [task] = pipe.work_queue.drain()
    app = Chalice(app_name="observability-test")
    observability.configure(app)
    log = logging.getLogger("tests.observability")

    @app.on_sqs_message(queue="work")
    def handle_work_message(event):
        for record in event:
            body = json.loads(record.body)
            if body.get("job_id"):
                run_chunk(pipe, ChunkTask.from_message(body))
            log.info("message %s handled", record.to_dict()["messageId"])

    app.handler_map["handle_work_message"](_sqs_event(task, "m-1"), _LambdaContext("req-1"))
    app.handler_map["handle_work_message"](_sqs_event({"ping": 1}, "m-2"), _LambdaContext("req-2"))

    [first] = lines.messages(message="message m-1 handled")
    [second] = lines.messages(message="message m-2 handled")
    assert (first["request_id"], first["function"]) == ("req-1", "sluice-dev-handle_work_message")
    # The chunk's own fields ended with the chunk; the invocation's remain.
    assert (first["job_id"], first["chunk"], first["tenant"]) == (None, None, None)
    assert lines.messages(logger="chalicelib.jobs.work", request_id="req-1", job_id=job.job_id)
    assert second["request_id"] == "req-2"
    assert (second["job_id"], second["chunk"], second["tenant"]) == (None, None, None)
    assert dict(logs.current_context()) == {}


# -- never logged ------------------------------------------------------------------

def test_keys_tokens_and_the_callback_secret_are_redacted_wherever_they_appear(lines):
    log = logging.getLogger("tests.observability")
    log.info("key %s given", API_KEY)
    log.info("headers", extra={"headers": {"Authorization": f"Bearer {API_KEY}", "X-Other": "fine"}})
    log.warning("connect ws://127.0.0.1:8001/?api_key=%s&x=1", "anything-at-all")
    log.info("signing with %s", SECRET, extra={"nested": [{"deep": f"x{SECRET}y"}]})
    try:
        raise ValueError(f"refused Authorization: Bearer {API_KEY}")
    except ValueError:
        log.exception("request failed")

    assert API_KEY not in lines.text
    assert API_KEY[4:] not in lines.text
    assert SECRET not in lines.text
    assert "anything-at-all" not in lines.text
    logged = lines.all()
    assert logged[0]["message"] == "key slk_[redacted] given"
    assert logged[1]["headers"] == {"Authorization": "Bearer [redacted]", "X-Other": "fine"}
    assert logged[2]["message"] == "connect ws://127.0.0.1:8001/?api_key=[redacted]&x=1"
    assert logged[3]["nested"] == [{"deep": "x[redacted]y"}]
    assert "Bearer [redacted]" in logged[4]["exception"]


def test_a_short_secret_is_not_searched_for():
    # A one-letter secret would blank out every word it occurs in.
    assert Redactor(["abc"])("abc def") == "abc def"


MARKER = "ZQXDOCUMENTCONTENT"


def test_no_document_content_reaches_the_logs_whatever_the_file_does(lines, capsys):
    """Files whose every cell holds a marker, run through every path that logs:
    rows rejected, a job failed by its rows, a chunk that cannot be read,
    a file that is not what the processor reads, and a good job."""
    cells = f"{MARKER}site,{MARKER}fuel,12{MARKER},{MARKER}kWh,UK,2023"
    carbon_rejected = ("Site,Activity,Quantity,Unit,Country,Year\n" + f"{cells}\n" * 5).encode()
    pipe = memory_pipeline()
    assert run_file(pipe, carbon_rejected, processor="carbon").status == "failed"
    mixed = ("Site,Activity,Quantity,Unit,Country,Year\n" f"{cells}\n"
             f"{MARKER},Diesel,3200,litres,UK,2023\n").encode()
    assert run_file(pipe, mixed, processor="carbon").status == "completed_with_errors"
    assert run_file(pipe, f"{MARKER}\n{MARKER},{MARKER}\n".encode(), processor="profile").status == "failed"
    assert run_file(pipe, b"\x00\x01\x02" + MARKER.encode() * 50, processor="profile").status == "failed"
    failing, _ = _failing_chunk_job()
    failing.blobs.put("uploads/x", MARKER.encode())
    drain(failing)

    assert lines.all(), "the paths above log"
    assert MARKER not in lines.text
    # The metric lines on stdout carry counts and ids, never contents either.
    assert MARKER not in capsys.readouterr().out


def test_a_scans_background_copies_log_under_their_chunk(lines):
    pipe = memory_pipeline()
    log = logging.getLogger("tests.observability")
    put = pipe.blobs.put

    def logged_put(key, data, *args, **kwargs):
        log.info("put on %s", threading.current_thread().name)
        return put(key, data, *args, **kwargs)

    pipe.blobs.put = logged_put
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("a.txt", "see HOLE-1")
    job = run_file(pipe, archive.getvalue(), filename="docs.zip", processor="scan",
                   options={"target_hole_codes": ["HOLE-1"]})
    copies = [line for line in lines.all() if line["message"].startswith("put on copy")]
    assert job.status == "completed" and copies
    assert all((line["job_id"], line["chunk"], line["processor"], line["tenant"]) ==
               (job.job_id, 0, "scan", "default") for line in copies)
