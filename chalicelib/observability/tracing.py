"""AWS X-Ray through aws-xray-sdk: on in Lambda when the function traces, off elsewhere.

Lambda opens a segment per invocation when the function's tracing is active
(`"xray": true` in the Chalice stage) and tells the code through
AWS_XRAY_DAEMON_ADDRESS. Only then is botocore patched, so every AWS call
becomes a subsegment, and `subsegment()` records the chunk, the dispatch and
the aggregation with the job's annotations (searchable in the X-Ray console:
`annotation.job_id = "..."`). Everywhere else (tests, local_cloud, a Lambda
that does not trace) the SDK is never imported, nothing is patched, and
`subsegment()` does nothing: no "cannot find the current segment" in any log.
SLUICE_XRAY=off turns it off on Lambda too; SLUICE_XRAY=on forces it on for a
developer who runs a daemon.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

log = logging.getLogger(__name__)

# botocore, not boto3: boto3's clients are botocore's, and patching botocore covers both.
PATCHED = ("botocore",)
SERVICE_NAME = "sluice"

_enabled = False


def wanted(mode: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process should trace: `mode` is the stage's SLUICE_XRAY."""
    if mode == "off":
        return False
    if mode == "on":
        return True
    # auto: a Lambda function whose tracing is active (Lambda sets the daemon's address then).
    return bool(environ.get("AWS_LAMBDA_FUNCTION_NAME") and environ.get("AWS_XRAY_DAEMON_ADDRESS"))


def enabled() -> bool:
    return _enabled


def configure(mode: str = "auto", environ: Mapping[str, str] = os.environ) -> bool:
    """Turn tracing on if it is wanted (once per process); returns whether it is on."""
    global _enabled
    if _enabled or not wanted(mode, environ):
        return _enabled
    try:
        from aws_xray_sdk.core import patch, xray_recorder
    except ImportError:
        log.warning("X-Ray tracing is wanted but aws-xray-sdk is not installed; not tracing")
        return False
    # Outside a segment (code run before Lambda opens one, or SLUICE_XRAY=on
    # with no segment begun) a call is simply not traced, without an error line.
    xray_recorder.configure(service=SERVICE_NAME, context_missing="IGNORE_ERROR")
    patch(PATCHED)
    _enabled = True
    return True


@contextlib.contextmanager
def subsegment(name: str, **annotations: Any) -> Iterator[Any]:
    """A subsegment around the block, annotated; yields it, or None when off."""
    if not _enabled:
        yield None
        return
    from aws_xray_sdk.core import xray_recorder

    with xray_recorder.in_subsegment(name) as current:
        _annotate(current, annotations)
        yield current


def annotate(**annotations: Any) -> None:
    """Annotate the open subsegment (what is learnt inside it, e.g. the tenant)."""
    if _enabled:
        from aws_xray_sdk.core import xray_recorder

        _annotate(xray_recorder.current_subsegment(), annotations)


def _annotate(entity: Any, annotations: Mapping[str, Any]) -> None:
    if entity is None:
        return
    for key, value in annotations.items():
        if value is not None:
            entity.put_annotation(key, value)
