"""The fixed-window limiter's logic, on a fake clock: no sleeping, no timing."""
from __future__ import annotations

import pytest

from chalicelib.jobs.model import ServiceError
from chalicelib.limits import MemoryWindowCounter, RateLimiter, RateLimitTimeoutError
from chalicelib.limits.limiter import JITTER_FRACTION, TTL_GRACE_S


class FakeClock:
    """time.time and time.sleep in one: sleeping moves the clock."""

    def __init__(self, now: float):
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _limiter(counter, clock, limit=3, per=10, key="api", jitter=lambda: 0.0):
    return RateLimiter(counter, key, limit, per, clock=clock, sleep=clock.sleep, jitter=jitter)


def test_windows_are_aligned_on_epoch_multiples():
    clock = FakeClock(1_000_003.25)
    limiter = _limiter(MemoryWindowCounter(), clock, limit=1, per=10)
    assert limiter.try_acquire().window == 1_000_000
    denied = limiter.try_acquire()
    assert (denied.allowed, denied.window) == (False, 1_000_000)
    assert denied.retry_after == pytest.approx(6.75)


def test_allows_limit_calls_per_window_then_again_in_the_next():
    clock = FakeClock(500.0)
    limiter = _limiter(MemoryWindowCounter(), clock, limit=3, per=10)
    assert [limiter.try_acquire().allowed for _ in range(5)] == [True, True, True, False, False]
    clock.now = 509.999
    assert limiter.try_acquire().allowed is False
    clock.now = 510.0
    assert [limiter.try_acquire().allowed for _ in range(4)] == [True, True, True, False]


def test_limiters_sharing_a_counter_and_key_share_the_limit():
    # Two Lambdas: two limiter objects, one store.
    counter, clock = MemoryWindowCounter(), FakeClock(100.0)
    a, b = _limiter(counter, clock, limit=4), _limiter(counter, clock, limit=4)
    allowed = [x.try_acquire().allowed for x in (a, b, a, b, a, b)]
    assert allowed == [True, True, True, True, False, False]
    other_key = _limiter(counter, clock, limit=4, key="other")
    assert other_key.try_acquire().allowed is True


def test_a_refused_call_changes_no_count():
    counter, clock = MemoryWindowCounter(), FakeClock(100.0)
    limiter = _limiter(counter, clock, limit=2)
    for _ in range(10):
        limiter.try_acquire()
    assert counter.counts == {("api", 100): 2}


def test_counters_expire_after_their_window():
    counter, clock = MemoryWindowCounter(), FakeClock(125.0)
    _limiter(counter, clock, per=60).try_acquire()
    assert counter.expiries == {("api", 120): 180 + TTL_GRACE_S}


def test_acquire_returns_at_once_while_calls_are_left():
    clock = FakeClock(100.0)
    limiter = _limiter(MemoryWindowCounter(), clock, limit=2)
    assert limiter.acquire(max_wait_s=0).allowed
    assert limiter.acquire(max_wait_s=0).allowed
    assert clock.sleeps == []


def test_acquire_sleeps_until_the_next_window_plus_jitter():
    clock = FakeClock(102.0)
    limiter = _limiter(MemoryWindowCounter(), clock, limit=1, per=10, jitter=lambda: 1.0)
    limiter.acquire(30)
    decision = limiter.acquire(30)
    assert decision.allowed and decision.window == 110
    assert clock.sleeps == [pytest.approx(8.0 + JITTER_FRACTION * 10)]


def test_acquire_waits_across_several_full_windows():
    counter, clock = MemoryWindowCounter(), FakeClock(100.0)
    limiter = _limiter(counter, clock, limit=1, per=10)
    # Other workers take windows 110 and 120 before this one wakes.
    counter.hit("api", 110, 1, 0)
    counter.hit("api", 120, 1, 0)
    limiter.acquire(30)
    assert limiter.acquire(40).window == 130
    assert clock.sleeps == [10.0, 10.0, 10.0]


def test_acquire_gives_up_instead_of_sleeping_past_max_wait():
    counter, clock = MemoryWindowCounter(), FakeClock(100.0)
    limiter = _limiter(counter, clock, limit=1, per=10)
    limiter.acquire(5)
    with pytest.raises(RateLimitTimeoutError, match="still full") as err:
        limiter.acquire(max_wait_s=5)
    assert isinstance(err.value, ServiceError)  # the queue delivers the event again
    assert clock.sleeps == []  # it did not sleep only to fail afterwards
    counter.hit("api", 110, 1, 0)
    with pytest.raises(RateLimitTimeoutError):
        limiter.acquire(max_wait_s=15)
    assert clock.sleeps == [10.0]


@pytest.mark.parametrize("limit, per", [(0, 1), (5, 0), (-1, 10)])
def test_a_limit_must_allow_something(limit, per):
    with pytest.raises(ValueError):
        RateLimiter(MemoryWindowCounter(), "api", limit, per)
