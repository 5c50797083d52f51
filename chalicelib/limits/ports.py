"""The one question a shared rate limit asks its store."""
from __future__ import annotations

from typing import Protocol


class WindowCounter(Protocol):
    def hit(self, key: str, window: int, limit: int, ttl_epoch: int) -> int | None:
        """Atomically add 1 to the count of (`key`, `window`) if it is below
        `limit` and return the new count; None when the limit was already
        reached (the count is left as it is). `ttl_epoch` is when the counter
        may be forgotten. Raises chalicelib.jobs.model.ServiceError when the
        store cannot be reached."""
