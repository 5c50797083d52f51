"""X-Ray: on only in a Lambda whose tracing is active, and then one
subsegment per chunk (and per dispatch and aggregation) annotated with the
job, the processor and the chunk, beside a subsegment per AWS call; off
everywhere else, without patching anything or logging a word about it."""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import botocore.client
import pytest
import wrapt

from chalicelib.observability import tracing
from tests.support.memory_pipeline import memory_pipeline, run_file

REPO_ROOT = Path(__file__).resolve().parents[2]
IN_TRACED_LAMBDA = {"AWS_LAMBDA_FUNCTION_NAME": "sluice-dev-handle_work_message",
                    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000"}


@pytest.mark.parametrize(("mode", "environ", "expected"), [
    ("auto", IN_TRACED_LAMBDA, True),
    # A Lambda whose tracing is not active has no daemon address.
    ("auto", {"AWS_LAMBDA_FUNCTION_NAME": "sluice-dev-handle_work_message"}, False),
    # A developer's machine with a daemon running, but no Lambda.
    ("auto", {"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000"}, False),
    ("auto", {}, False),
    ("off", IN_TRACED_LAMBDA, False),
    ("on", {}, True),
])
def test_tracing_is_wanted_only_in_a_traced_lambda_unless_the_stage_says(mode, environ, expected):
    assert tracing.wanted(mode, environ) is expected


def _patched(function) -> bool:
    return isinstance(function, wrapt.ObjectProxy)  # what the SDK's patch puts in its place


def test_off_nothing_is_patched_no_subsegment_is_made_and_nothing_is_logged(caplog, capsys):
    caplog.set_level(logging.DEBUG)
    assert tracing.configure("auto", environ={}) is False
    assert tracing.configure("off", environ=IN_TRACED_LAMBDA) is False
    assert not tracing.enabled()
    with tracing.subsegment("chunk", job_id="j", chunk=0) as current:
        assert current is None
    tracing.annotate(tenant="t")

    pipe = memory_pipeline(chunk_bytes=256)
    job = run_file(pipe, b"a,b\n" + b"1,2\n" * 200, processor="profile")
    assert job.status == "completed" and job.chunks_total > 1

    assert not _patched(botocore.client.BaseClient._make_api_call)
    patcher = sys.modules.get("aws_xray_sdk.core.patcher")
    assert patcher is None or not patcher._PATCHED_MODULES
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "segment" not in logged
    assert not [r for r in caplog.records if r.name.startswith("aws_xray_sdk")]
    assert "segment" not in capsys.readouterr().err


# Runs in its own process: patching botocore cannot be undone. argv[1] says
# who opens the segment: "lambda" is Lambda's runtime (LAMBDA_TASK_ROOT and the
# invocation's _X_AMZN_TRACE_ID: the SDK's facade segment, each subsegment
# streamed as it ends); "test" begins one itself, with sampling off.
_TRACED_RUN = textwrap.dedent("""
    import json, logging, sys
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    import boto3
    from moto import mock_aws
    from aws_xray_sdk.core import xray_recorder
    from chalicelib.observability import tracing
    from tests.support.memory_pipeline import memory_pipeline, run_file

    assert tracing.configure("auto") is True  # a Lambda with tracing active, per its environment
    with mock_aws():
        if sys.argv[1] == "test":
            xray_recorder.configure(sampling=False)
            xray_recorder.begin_segment("invocation")
        pipe = memory_pipeline(chunk_bytes=256)
        job = run_file(pipe, b"a,b\\n" + b"1,2\\n" * 200, processor="profile")
        boto3.client("s3", region_name="us-east-1").list_buckets()
        if sys.argv[1] == "test":
            xray_recorder.end_segment()
    print(json.dumps({"job_id": job.job_id, "chunks": job.chunks_total, "status": job.status}))
""")
LAMBDA_INVOCATION = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
}


def _entities(datagrams: list[bytes]) -> list[dict]:
    """Every segment and subsegment the emitter sent (header line, then the JSON document)."""
    found = []

    def walk(entity):
        found.append(entity)
        for child in entity.get("subsegments", []):
            walk(child)

    for datagram in datagrams:
        header, _, body = datagram.decode().partition("\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        walk(json.loads(body))
    return found


@pytest.mark.parametrize("segment", ["lambda", "test"])
def test_on_each_chunk_is_one_subsegment_annotated_and_aws_calls_are_traced(segment):
    """A Lambda with active tracing, but the daemon is this test: the SDK's own
    UDP emitter sends what it records to a socket the test reads."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith(("SLUICE_", "LAMBDA_TASK_ROOT", "_X_AMZN", "AWS_"))}
        environ.update({"AWS_LAMBDA_FUNCTION_NAME": "sluice-dev-handle_work_message",
                        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"})
        if segment == "lambda":
            environ.update(LAMBDA_INVOCATION)
        run = subprocess.run([sys.executable, "-c", _TRACED_RUN, segment], cwd=REPO_ROOT, env=environ,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        datagrams = []
        daemon.settimeout(0.5)
        try:
            while True:
                datagrams.append(daemon.recv(65536))
        except TimeoutError:
            pass

    job = json.loads(run.stdout.strip().splitlines()[-1])
    assert job["status"] == "completed" and job["chunks"] > 1
    entities = _entities(datagrams)
    chunks = [e for e in entities if e["name"] == "chunk"]
    assert sorted(e["annotations"]["chunk"] for e in chunks) == list(range(job["chunks"]))
    for entity in chunks:
        assert entity["annotations"]["job_id"] == job["job_id"]
        assert entity["annotations"]["processor"] == "profile"
        assert entity["annotations"]["tenant"] == "default"
    [dispatch] = [e for e in entities if e["name"] == "dispatch"]
    [aggregate] = [e for e in entities if e["name"] == "aggregate"]
    for step in (dispatch, aggregate):
        assert step["annotations"] == {"job_id": job["job_id"], "processor": "profile", "tenant": "default"}
    # botocore is patched: the S3 call is a subsegment of its own.
    assert [e["aws"]["operation"] for e in entities if e.get("namespace") == "aws"] == ["ListBuckets"]
    assert "segment" not in run.stderr.lower(), run.stderr
