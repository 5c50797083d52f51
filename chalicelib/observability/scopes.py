"""Where work starts, and what it is about: an invocation, a chunk, a job step.

Each scope sets the log context once, opens its X-Ray subsegment and, for a
chunk, times it into a metric record, so the code inside logs, traces and
counts without passing any of it around.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from . import logs, metrics, tracing


def invocation_middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware for every handler: the invocation's request id and
    function on each line, the caller's tenant on an API request's, and how
    long an SQS message waited before its invocation started."""
    request = getattr(event, "lambda_context", None) is not None  # a REST request
    lambda_context = event.lambda_context if request else getattr(event, "context", None)
    fields = {"request_id": getattr(lambda_context, "aws_request_id", None),
              "function": getattr(lambda_context, "function_name", None)}
    if request:
        fields["tenant"] = ((event.context or {}).get("authorizer") or {}).get("tenant")
    with logs.log_context(**fields), metrics.queue_lag([] if request else _sqs_sent_timestamps(event)):
        return get_response(event)


def _sqs_sent_timestamps(event: Any) -> Iterator[int]:
    raw = event.to_dict() if hasattr(event, "to_dict") else None
    records = raw.get("Records") if isinstance(raw, Mapping) else None
    for item in records if isinstance(records, list) else ():
        if item.get("eventSource") != "aws:sqs":
            continue
        sent = str((item.get("attributes") or {}).get("SentTimestamp", ""))
        if sent.isdigit():
            yield int(sent)


def observed_chunk(run: Callable[[Any, Any], str]) -> Callable[[Any, Any], str]:
    """For run_chunk(pipe, task): the chunk's log context, one X-Ray
    subsegment, and one metric record with the outcome run returns."""
    @functools.wraps(run)
    def observed(pipe: Any, task: Any) -> str:
        about = {"job_id": task.job_id, "chunk": task.index, "processor": task.processor}

        def properties() -> dict[str, Any]:
            context = logs.current_context()
            return {"event": "chunk", "job_id": task.job_id, "chunk": task.index,
                    "tenant": context.get("tenant")}

        with logs.log_context(**about), tracing.subsegment("chunk", **about), \
                metrics.chunk_record(pipe.settings, task.processor, properties) as chunk:
            chunk.outcome = run(pipe, task)
            return chunk.outcome
    return observed


def observed_job(step: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """For a job step fn(pipe, job_id, ...): its log context and X-Ray subsegment."""
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def observed(pipe: Any, job_id: str, *args: Any, **kwargs: Any) -> Any:
            with logs.log_context(job_id=job_id), tracing.subsegment(step, job_id=job_id):
                return fn(pipe, job_id, *args, **kwargs)
        return observed
    return decorate


def bind(**fields: Any) -> None:
    """What the work turned out to be about (a job's tenant and processor, once
    read): on every later line of the scope, and on its subsegment."""
    logs.bind(**fields)
    tracing.annotate(**fields)
