"""What live progress needs from the outside: where connections are kept, and
a way to push a message down one of them."""
from __future__ import annotations

from typing import Any, Protocol


class ConnectionStore(Protocol):
    def add(self, connection_id: str, info: dict[str, str], ttl_epoch: int) -> None: ...
    def get(self, connection_id: str) -> dict[str, str] | None:
        """What `add` kept about the connection (its tenant...), or None."""
    def remove(self, connection_id: str) -> list[str]:
        """Forget the connection; returns the jobs it followed."""
    def subscribe(self, job_id: str, connection_id: str, ttl_epoch: int) -> None: ...
    def unsubscribe(self, job_id: str, connection_id: str) -> None: ...
    def subscribers(self, job_id: str) -> list[str]: ...


class LiveSender(Protocol):
    def send(self, connection_id: str, message: dict[str, Any]) -> bool:
        """Push one JSON message; False when the connection is gone."""
