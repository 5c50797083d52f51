"""Messages to one SQS queue, sent ten at a time."""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

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
        raise RuntimeError(f"SQS kept failing {len(pending)} messages of a batch")
