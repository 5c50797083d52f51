"""A fixed-window rate limit that every process agrees on.

Windows are aligned on epoch multiples of `per_seconds`, so any two processes
with synchronised clocks (Lambda's are, by NTP) name the same window the same
way and count in the same DynamoDB item. A fixed window promises at most
`limit` calls *started* per window; across a boundary two windows' calls can
come close together (up to 2 x limit in a short span), which is what an API
with a per-second or per-minute quota accepts.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..jobs.model import ServiceError
from .ports import WindowCounter

# Workers refused in one window all wake when the next begins; spreading them
# over the first few percent of the window keeps them from hitting the counter
# in one burst.
JITTER_FRACTION = 0.05
# Keep a counter a little past its window: DynamoDB's TTL deletes lazily, and
# nobody reads an old window anyway.
TTL_GRACE_S = 60


class RateLimitTimeoutError(ServiceError):
    """The limit stayed full longer than the caller could wait. A ServiceError,
    so the event (the chunk) is delivered again later."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    #: seconds until the next window begins (0.0 when allowed)
    retry_after: float
    #: start (epoch seconds) of the window this decision was counted in
    window: int


class RateLimiter:
    def __init__(self, counter: WindowCounter, key: str, limit: int, per_seconds: int,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 jitter: Callable[[], float] = random.random):
        if limit < 1 or per_seconds < 1:
            raise ValueError(f"a rate limit needs limit >= 1 and per_seconds >= 1, "
                             f"got {limit} per {per_seconds}")
        self._counter = counter
        self.key = key
        self.limit = limit
        self.per_seconds = int(per_seconds)
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter

    def window_of(self, now: float) -> int:
        return int(now // self.per_seconds) * self.per_seconds

    def try_acquire(self) -> Decision:
        """Take one call from the current window if any is left."""
        now = self._clock()
        window = self.window_of(now)
        end = window + self.per_seconds
        count = self._counter.hit(self.key, window, self.limit, ttl_epoch=end + TTL_GRACE_S)
        if count is not None:
            return Decision(True, 0.0, window)
        return Decision(False, max(0.0, end - now), window)

    def acquire(self, max_wait_s: float) -> Decision:
        """Block until a call is allowed; raise RateLimitTimeoutError instead
        of sleeping when the next window begins after `max_wait_s`."""
        started = self._clock()
        while True:
            decision = self.try_acquire()
            if decision.allowed:
                return decision
            wait = decision.retry_after + self._jitter() * JITTER_FRACTION * self.per_seconds
            waited = self._clock() - started
            if waited + wait > max_wait_s:
                raise RateLimitTimeoutError(
                    f"rate limit {self.key!r} ({self.limit} per {self.per_seconds} s) still full "
                    f"after waiting {waited:.1f} s (at most {max_wait_s:g} s)")
            self._sleep(wait)
