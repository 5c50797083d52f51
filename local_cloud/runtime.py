"""The Lambda side of the pump: runs inside each worker process of the pool.

Each worker is a fresh (spawned) process that imports the app once, like a warm
Lambda sandbox, then runs one invocation at a time. Several workers give the real
parallelism Lambda's concurrency gives, and a handler that leaks state between
invocations or relies on a shared in-memory cache shows the same bugs here as in
Lambda. Everything in and out of this module is picklable plain data.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import sys
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import Any

from local_cloud.sources import AppDescription, FunctionSettings, describe_app, load_chalice_config


@dataclass(frozen=True)
class Invocation:
    """How one invocation ended, as Lambda would report it."""

    ok: bool
    payload: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration_s: float = 0.0


class LambdaContext:
    """The context object a Python Lambda handler receives, minus what nothing local has."""

    function_version = "$LATEST"
    identity = None
    client_context = None

    def __init__(self, settings: FunctionSettings, region: str = "us-east-1"):
        self.function_name = settings.function_name
        self.memory_limit_in_mb = settings.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:123456789012:function:{settings.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{settings.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + settings.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def quiet_noisy_loggers() -> None:
    # botocore says "Found credentials in environment variables" for every client.
    logging.getLogger("botocore.credentials").setLevel(logging.WARNING)


# One app per worker process, loaded by init_worker.
_app: Any = None
_app_dir: str | None = None


def init_worker(app_dir: str, module_name: str, environment: dict[str, str], log_level: int) -> None:
    """ProcessPoolExecutor initializer: the sandbox's cold start."""
    global _app, _app_dir
    # Ctrl-C reaches the whole process group; the pump, not each worker, decides
    # when to stop, so an in-flight invocation is not torn mid-way by it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(environment)
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    # JSON lines with the job's context, as the app writes them on Lambda.
    from chalicelib.observability import logs

    logs.install(log_level)
    quiet_noisy_loggers()
    module = importlib.import_module(module_name)
    _app = module.app
    _app_dir = app_dir


def describe(chalice_stage: str, local_stage: str) -> AppDescription:
    return describe_app(_app, load_chalice_config(_app_dir), chalice_stage, local_stage)


def invoke(handler_name: str, event: dict[str, Any], settings: FunctionSettings) -> Invocation:
    """Run one handler on one event, reporting errors the way Lambda's runtime does."""
    context = LambdaContext(settings, os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    started = time.monotonic()
    try:
        result = _app.handler_map[handler_name](event, context)
        # Lambda serialises the reply to JSON; what it cannot serialise is an error.
        payload = json.loads(json.dumps(result)) if result is not None else None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any handler error fails the invocation
        duration = time.monotonic() - started
        # What CloudWatch Logs would show for this invocation.
        print(
            f"[{settings.function_name}] {context.aws_request_id} failed:\n"
            f"{traceback.format_exc()}",
            file=sys.stderr,
            flush=True,
        )
        return Invocation(False, None, type(exc).__name__, str(exc), duration)
    duration = time.monotonic() - started
    if duration > settings.timeout_s:
        # Lambda would have killed the invocation; its effects here did happen,
        # but the event source must treat it as failed, as it would in AWS.
        message = f"Task timed out after {settings.timeout_s:.2f} seconds"
        print(f"[{settings.function_name}] {context.aws_request_id} {message}", file=sys.stderr)
        return Invocation(False, None, "Sandbox.Timedout", message, duration)
    return Invocation(True, payload, duration_s=duration)


def ping() -> int:
    """A no-op task; running one per worker warms every sandbox before traffic."""
    time.sleep(0.2)
    return os.getpid()
