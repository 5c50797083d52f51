"""One attempt at a callback, and what follows it: done, tried again later
(re-sent to the callback queue with a growing delay), or parked in the DLQ.

The attempt count travels in the message, so the backoff survives any number
of Lambdas. Nothing here can fail the job: it is final before a callback is
ever tried.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from ..jobs.model import InputError
from ..jobs.pipeline import Pipeline
from .callbacks import MAX_ATTEMPTS, DeliveryResult, deliver, next_delay, validate_callback_url

log = logging.getLogger(__name__)


def deliver_callback(pipe: Pipeline, message: dict[str, Any]) -> str:
    """Returns delivered, retrying or dead."""
    try:
        url = message["url"]
        notice = message["notice"]
        attempt = int(message.get("attempt", 1))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed callback message: {exc!r}") from exc
    body = json.dumps(notice, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    secret = pipe.settings.callback_secret.encode("utf-8")
    try:
        # Again at every attempt: the host may resolve elsewhere than when
        # the job was accepted (DNS rebinding).
        validate_callback_url(url, pipe.settings.callback_allow_private)
        result = deliver(url, body, secret, notice["event_id"])
    except InputError as exc:
        result = DeliveryResult(ok=False, status=None, error=str(exc), retryable=False)
    extra = {"job_id": notice.get("job_id"), "attempt": attempt, "status_code": result.status}
    if result.ok:
        log.info("callback delivered", extra=extra)
        return "delivered"
    errors = [*message.get("errors", []), f"attempt {attempt}: {result.error}"][-MAX_ATTEMPTS:]
    if result.retryable and attempt < MAX_ATTEMPTS:
        delay = next_delay(attempt)
        log.warning("callback failed, retrying in %s s: %s", delay, result.error, extra=extra)
        pipe.callback_queue.send({**message, "attempt": attempt + 1, "errors": errors},
                                 delay_seconds=delay)
        return "retrying"
    log.error("callback given up: %s", result.error, extra=extra)
    pipe.callback_dlq.send({**message, "errors": errors})
    return "dead"
