"""WindowCounter in this process: for unit tests and single-process runs."""
from __future__ import annotations

import threading


class MemoryWindowCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[tuple[str, int], int] = {}
        self.expiries: dict[tuple[str, int], int] = {}

    def hit(self, key: str, window: int, limit: int, ttl_epoch: int) -> int | None:
        with self._lock:
            count = self.counts.get((key, window), 0)
            if count >= limit:
                return None
            self.counts[(key, window)] = count + 1
            self.expiries[(key, window)] = ttl_epoch
            return count + 1
