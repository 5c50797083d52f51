"""Messages to one SQS queue, sent ten at a time; and moving a queue's
messages to another (a dead-letter queue's back to its source)."""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..jobs.model import ServiceError
from .errors import service_errors

_BATCH = 10


class SqsTaskQueue:
    def __init__(self, client, queue_name: str):
        self._sqs = client
        self._name = queue_name
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = self._sqs.get_queue_url(QueueName=self._name)["QueueUrl"]
        return self._url

    @service_errors("SQS")
    def send_all(self, messages: Iterable[dict[str, Any]]) -> int:
        sent = 0
        batch: list[dict[str, Any]] = []
        for message in messages:
            batch.append(message)
            if len(batch) == _BATCH:
                sent += self._send_batch(batch)
                batch = []
        if batch:
            sent += self._send_batch(batch)
        return sent

    @service_errors("SQS")
    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None:
        self._sqs.send_message(QueueUrl=self.url, DelaySeconds=delay_seconds,
                               MessageBody=json.dumps(message, separators=(",", ":")))

    def _send_batch(self, batch: list[dict[str, Any]]) -> int:
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(body, separators=(",", ":"))}
            for i, body in enumerate(batch)
        ]
        pending = entries
        for _attempt in range(5):
            resp = self._sqs.send_message_batch(QueueUrl=self.url, Entries=pending)
            failed = {f["Id"] for f in resp.get("Failed", []) if not f.get("SenderFault")}
            sender = [f for f in resp.get("Failed", []) if f.get("SenderFault")]
            if sender:
                raise ValueError(f"SQS rejected messages: {sender}")
            if not failed:
                return len(entries)
            pending = [e for e in pending if e["Id"] in failed]
        raise ServiceError(f"SQS kept failing {len(pending)} messages of a batch")


@dataclass(frozen=True)
class MoveReport:
    moved: int
    #: messages whose send failed: still in the source queue, visible again later
    failed: int


def move_messages(client, from_url: str, to_url: str, visibility_s: int = 60) -> MoveReport:
    """Move every message of one queue to another (a DLQ back to its source
    queue): body and message attributes as they are, each deleted from
    `from_url` only after its send succeeded. SQS gives the moved message a
    new id and a receive count of 0, as its own redrive does. Stops when the
    queue answers empty to a long poll; a message whose send failed stays
    hidden for `visibility_s`, so it is not taken twice in one run."""
    moved = failed = 0
    while True:
        messages = client.receive_message(
            QueueUrl=from_url, MaxNumberOfMessages=_BATCH, WaitTimeSeconds=1,
            VisibilityTimeout=visibility_s, MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return MoveReport(moved, failed)
        entries = [{"Id": str(i), "MessageBody": m["Body"],
                    **({"MessageAttributes": _sendable(m["MessageAttributes"])}
                       if m.get("MessageAttributes") else {})}
                   for i, m in enumerate(messages)]
        resp = client.send_message_batch(QueueUrl=to_url, Entries=entries)
        sent = {s["Id"] for s in resp.get("Successful", [])}
        failed += len(messages) - len(sent)
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages) if str(i) in sent]
        if done:
            client.delete_message_batch(QueueUrl=from_url, Entries=done)
            moved += len(done)


def _sendable(attributes: dict[str, Any]) -> dict[str, Any]:
    # ReceiveMessage adds empty list fields that SendMessage does not take.
    return {name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
            for name, value in attributes.items()}
