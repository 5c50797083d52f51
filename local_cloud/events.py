"""Lambda-shaped events, built from what the AWS APIs return, and Lambda's reading of replies.

A handler must not be able to tell the pump from Lambda: the records carry the
same keys and types Lambda sends (strings where Lambda sends strings, base64 for
binary, epoch seconds for stream timestamps), and a reply is judged by Lambda's
rules for partial batch responses. Pure functions, so they are unit-tested alone.
"""
from __future__ import annotations

import base64
import calendar
import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

# --- SQS --------------------------------------------------------------------------


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ReceiveMessage message as a record of Lambda's SQS event."""
    body = message["Body"]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _sqs_message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _sqs_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    # ReceiveMessage says StringValue/BinaryValue; Lambda's event says stringValue/binaryValue.
    out: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return out


def sqs_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


def failed_item_ids(response: Any, batch_ids: Iterable[str]) -> set[str]:
    """The ids Lambda would keep after a successful invocation returned ``response``.

    Lambda's ReportBatchItemFailures rules: no reply, or no batchItemFailures,
    means every record succeeded; an itemIdentifier that is empty or not in the
    batch makes the whole batch count as failed.
    """
    batch = list(batch_ids)
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return set()
    failed = set()
    for failure in response["batchItemFailures"]:
        item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not item or item not in batch:
            return set(batch)
        failed.add(item)
    return failed


# --- S3 ---------------------------------------------------------------------------

def s3_notification(body: str) -> dict[str, Any] | None:
    """An S3 notification from the events queue, or None for S3's own test event."""
    event = json.loads(body)
    if event.get("Event") == "s3:TestEvent":
        return None
    for record in event.get("Records", []):
        # moto leaves out fields real S3 sends; handlers may read them.
        record.setdefault("userIdentity", {"principalId": "local"})
        record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
        record.setdefault("responseElements", {})
        # S3's sequencer orders events for one key; a later event has a larger one.
        record["s3"]["object"].setdefault("sequencer", f"{time.time_ns():016X}")
    return event


def s3_configuration_id(event: dict[str, Any]) -> str:
    return event["Records"][0]["s3"]["configurationId"]


# --- EventBridge schedules --------------------------------------------------------

def scheduled_event(rule_arn: str, region: str, account: str,
                    now: dt.datetime | None = None) -> dict[str, Any]:
    """What EventBridge sends a function when its schedule fires."""
    now = now or dt.datetime.now(dt.UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


# --- DynamoDB streams -------------------------------------------------------------

def stream_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as a record of Lambda's DynamoDB stream event."""
    out = jsonable(record)
    out["eventSourceARN"] = stream_arn
    out.setdefault("eventVersion", "1.1")
    return out


def stream_sequence_number(record: dict[str, Any]) -> str:
    return record["dynamodb"]["SequenceNumber"]


def jsonable(value: Any) -> Any:
    """boto3's parsed values back to Lambda's JSON: bytes as base64, times as epoch seconds."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return calendar.timegm(value.timetuple())
        return int(value.timestamp())
    if isinstance(value, set):
        return [jsonable(v) for v in sorted(value)]
    return value
