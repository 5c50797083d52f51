"""End-to-end fixtures: the real `python -m local_cloud`, started once per session.

The local cloud runs as its own process, exactly as a developer starts it, on
free loopback ports, so e2e tests exercise the CLI, the embedded AWS, the pump's
worker processes, the API over real HTTP and the WebSocket gateway. Its output goes to a log file (a
pipe nobody reads would fill up and stall it); a failing start shows its tail.
"""
from __future__ import annotations

import functools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from local_cloud import READY_LINE
from tests.support.authed import ApiSession
from tests.support.aws_calls import AWS_CALLS, TEST_ACCESS_KEY

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
STAGE = "local"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalCloudProcess:
    api_url: str
    aws_url: str
    ws_url: str
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @functools.cached_property
    def session(self) -> boto3.session.Session:
        # Its own access key: the call ledger tells the tests' calls from the app's.
        return boto3.session.Session(
            aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key="local", region_name="us-east-1"
        )

    def client(self, service: str) -> Any:
        """A boto3 client for the embedded AWS (one per service, reused)."""
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service,
                endpoint_url=self.aws_url,
                config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
            )
        return self._clients[service]

    @functools.cached_property
    def outputs(self) -> dict[str, str]:
        """The deployed stack's Outputs (BucketName, TableName, WorkQueueName...)."""
        stack = self.client("cloudformation").describe_stacks(StackName=f"sluice-{STAGE}")["Stacks"][0]
        return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @functools.cached_property
    def api_key(self) -> str:
        """The key `python -m local_cloud` printed (`API key: <key>`)."""
        return re.search(r"^API key: (\S+)$", self.log(), re.MULTILINE).group(1)

    @functools.cached_property
    def http(self) -> ApiSession:
        """requests, sending the printed key to the API (and only there)."""
        return ApiSession(self.api_url, self.api_key)

    @property
    def ws_signed_in(self) -> str:
        """A WebSocket URL with a fresh one-time ticket, as the dashboard connects
        (each read buys a new one: a ticket opens one socket)."""
        answer = self.http.post(f"{self.api_url}/live/tickets", timeout=30)
        assert answer.status_code == 201, answer.text
        return answer.json()["url"]


@pytest.fixture(scope="session")
def local_cloud(tmp_path_factory) -> LocalCloudProcess:
    aws_port, api_port, ws_port = free_port(), free_port(), free_port()
    log_path = tmp_path_factory.mktemp("local_cloud") / "local_cloud.log"
    # Small chunks, so that even test-sized files fan out over many workers.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SLUICE_CHUNK_BYTES": "16384", "SLUICE_CHUNK_ROWS": "200",
           # Every test polls from 127.0.0.1, one client to the throttle; its
           # limit is proved in tests/integration/test_throttling.py.
           "SLUICE_STATUS_QUERIES_PER_WINDOW": "100000"}
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "local_cloud", "--aws-port", str(aws_port), "--api-port", str(api_port),
             "--ws-port", str(ws_port), "--stage", STAGE],
            cwd=REPO_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    cloud = LocalCloudProcess(
        api_url=f"http://127.0.0.1:{api_port}",
        aws_url=f"http://127.0.0.1:{aws_port}",
        ws_url=f"ws://127.0.0.1:{ws_port}",
        log_path=log_path,
        process=process,
    )
    try:
        _wait_until_ready(cloud)
        yield cloud
    finally:
        _stop(process)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The least-privilege check runs after the other e2e tests: it reads what they did."""
    last = [i for i in items if i.path.name == "test_least_privilege.py"]
    if last:
        rest = [i for i in items if i.path.name != "test_least_privilege.py"]
        after = max((n for n, i in enumerate(rest) if i.path.parent == last[0].path.parent), default=-1) + 1
        items[:] = rest[:after] + last + rest[after:]


def _wait_until_ready(cloud: LocalCloudProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if READY_LINE in cloud.log():
            # What it does from now on is held to the IAM policy (test_least_privilege.py).
            AWS_CALLS.started(cloud)
            return
        if cloud.process.poll() is not None:
            pytest.fail(
                f"local_cloud exited with {cloud.process.returncode} before it was ready:\n"
                f"{_tail(cloud.log())}"
            )
        time.sleep(0.2)
    pytest.fail(f"local_cloud not ready after {START_TIMEOUT_S} s:\n{_tail(cloud.log())}")


def _stop(process: subprocess.Popen) -> None:
    AWS_CALLS.stopping(process)
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])
