"""Lambda event plumbing shared by the SQS handlers."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from .jobs.model import InputError

log = logging.getLogger(__name__)


def run_sqs_batch(event: Any, handle: Callable[[dict], Any]) -> dict:
    """Run `handle` on each message body and report the failures one by one
    (ReportBatchItemFailures), so one bad message never sends its batch mates
    round again. A message that can never succeed (not JSON, not a message
    Sluice sends) is logged and dropped rather than retried."""
    failures = []
    for record in event:
        raw = record.to_dict()
        message_id = raw.get("messageId", "")
        try:
            body = json.loads(record.body)
            if not isinstance(body, dict):
                raise InputError("the message is not a JSON object")
            handle(body)
        except (json.JSONDecodeError, InputError) as exc:
            log.error("dropping malformed message %s: %s", message_id, exc)
        except Exception:
            log.exception("message %s failed; it will be delivered again", message_id)
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
