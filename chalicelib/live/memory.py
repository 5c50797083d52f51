"""In-memory connections and a sender that records what it sent (unit tests)."""
from __future__ import annotations

import threading
from typing import Any


class MemoryConnectionStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connections: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, list[str]] = {}

    def add(self, connection_id: str, info: dict[str, Any], ttl_epoch: int) -> None:
        with self._lock:
            self.connections[connection_id] = {**info, "jobs": []}

    def get(self, connection_id: str) -> dict[str, str] | None:
        with self._lock:
            found = self.connections.get(connection_id)
            return {k: v for k, v in found.items() if k != "jobs"} if found else None

    def remove(self, connection_id: str) -> list[str]:
        with self._lock:
            return list(self.connections.pop(connection_id, {}).get("jobs", []))

    def subscribe(self, job_id: str, connection_id: str, ttl_epoch: int) -> None:
        with self._lock:
            subs = self.subscriptions.setdefault(job_id, [])
            if connection_id not in subs:
                subs.append(connection_id)
            jobs = self.connections.setdefault(connection_id, {"jobs": []})["jobs"]
            if job_id not in jobs:
                jobs.append(job_id)

    def unsubscribe(self, job_id: str, connection_id: str) -> None:
        with self._lock:
            if connection_id in self.subscriptions.get(job_id, []):
                self.subscriptions[job_id].remove(connection_id)

    def subscribers(self, job_id: str) -> list[str]:
        with self._lock:
            return list(self.subscriptions.get(job_id, []))


class RecordingSender:
    """Keeps every message by connection; connections in `gone` refuse."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = {}
        self.gone: set[str] = set()

    def send(self, connection_id: str, message: dict[str, Any]) -> bool:
        if connection_id in self.gone:
            return False
        self.sent.setdefault(connection_id, []).append(message)
        return True
