"""The factor API client against a real HTTP factor service on 127.0.0.1
(tests/support/factor_service.py): answers, retries, failures, caching, and
the rate limit shared by many clients."""
from __future__ import annotations

import socket
import threading
import uuid
from email.utils import formatdate

import pytest

from chalicelib.adapters.dynamodb_factor_cache import DynamoFactorCache
from chalicelib.adapters.dynamodb_limits import DynamoWindowCounter
from chalicelib.carbon.factor_api import (
    WINDOW_HEADER,
    FactorApiConfigError,
    FactorApiError,
    HttpFactorLookup,
    RetryPolicy,
)
from chalicelib.carbon.factor_cache import MemoryFactorCache
from chalicelib.carbon.model import Factor, FactorNotFound
from chalicelib.jobs.model import ServiceError
from chalicelib.limits import MemoryWindowCounter, RateLimiter, RateLimitTimeoutError
from tests.support.factor_service import FactorService, Fault, always, every, factor_body, first

FAST = RetryPolicy(attempts=4, base_s=0.01, cap_s=0.05, retry_after_cap_s=5, timeout_s=5, max_wait_s=30)
ACTIVITIES = [f"activity-{i}" for i in range(16)]


def _factors():
    table = {
        ("electricity", "kWh", "GB", 2024): factor_body("electricity", "kWh", "GB", 2024, 0.20705),
        ("electricity", "kWh", "FR", 2023): factor_body("electricity", "kWh", "FR", 2023, 0.052),
        ("passenger travel", "passenger * km", "GB", 2024):
            factor_body("passenger travel", "passenger * km", "GB", 2024, 0.035),
    }
    for i, activity in enumerate(ACTIVITIES):
        table[(activity, "kg", "GB", 2024)] = factor_body(activity, "kg", "GB", 2024, 1.0 + i)
    return table


@pytest.fixture
def service():
    with FactorService(_factors()) as svc:
        yield svc


@pytest.fixture(scope="module")
def aws(embedded_stack):
    clients, outputs = embedded_stack
    return clients, outputs["TableName"]


class Recorder:
    def __init__(self):
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def _open_limiter(counter=None) -> RateLimiter:
    return RateLimiter(counter or MemoryWindowCounter(), "factor-api", 10_000, 1)


def _client(url, sleep=None, cache=None, policy=FAST, limiter=None) -> HttpFactorLookup:
    return HttpFactorLookup(url, limiter or _open_limiter(), cache=cache, policy=policy,
                            sleep=sleep or Recorder())


def _expected(activity, unit, region, year, kg_co2e) -> Factor:
    return Factor(**factor_body(activity, unit, region, year, kg_co2e))


# -- answers ---------------------------------------------------------------------

def test_answers_are_the_service_factors(service):
    client = _client(service.url)
    expected = _expected("electricity", "kWh", "GB", 2024, 0.20705)
    assert client.find("electricity", "kWh", "GB", 2024) == expected
    assert client.find("electricity", "kWh", "FR", 2023).kg_co2e == 0.052
    travel = client.find("passenger travel", "passenger * km", "GB", 2024)
    assert travel.unit == "passenger * km" and travel.kg_ch4 is None
    seen = service.requests[0]
    assert seen.query == ("electricity", "kWh", "GB", 2024)
    assert seen.headers["User-Agent"] == "Sluice-FactorClient/1"
    assert seen.window is not None


def test_missing_region_and_year_are_left_to_the_service(service):
    factor = _client(service.url).find("electricity", "kWh", None, None)
    assert (factor.region, factor.year) == ("GB", 2024)
    assert service.requests[0].query == ("electricity", "kWh", None, None)


def test_404_is_factor_not_found_with_the_service_message_and_asked_once(service):
    client = _client(service.url)
    for _ in range(3):
        with pytest.raises(FactorNotFound, match="no factor for unobtainium in kg"):
            client.find("unobtainium", "kg", "GB", 2024)
    assert service.by_query[("unobtainium", "kg", "GB", 2024)] == 1


# -- retries ---------------------------------------------------------------------

def test_429_with_retry_after_is_waited_out_and_retried(service):
    service.faults = first(2, Fault(429, retry_after="2"))
    sleep = Recorder()
    factor = _client(service.url, sleep=sleep).find("electricity", "kWh", "GB", 2024)
    assert factor.kg_co2e == 0.20705
    assert service.statuses == {429: 2, 200: 1}
    assert sleep.sleeps == [2.0, 2.0]


def test_429_without_retry_after_backs_off_exponentially(service):
    service.faults = first(3, Fault(429))
    sleep = Recorder()
    _client(service.url, sleep=sleep).find("electricity", "kWh", "GB", 2024)
    assert service.statuses == {429: 3, 200: 1}
    # base 0.01 s doubling, capped at 0.05 s, each within [step/2, step]
    for seconds, step in zip(sleep.sleeps, [0.01, 0.02, 0.04], strict=True):
        assert step / 2 <= seconds <= step


def test_retry_after_is_capped_and_may_be_a_date(service):
    service.faults = first(2, Fault(429, retry_after="3600"))
    sleep = Recorder()
    _client(service.url, sleep=sleep).find("electricity", "kWh", "GB", 2024)
    assert sleep.sleeps == [FAST.retry_after_cap_s] * 2
    past = Fault(429, retry_after=formatdate(0, usegmt=True))  # a date long past: no wait
    service.faults = lambda n: past if n == 4 else None  # requests 1-3 were the ones above
    sleep = Recorder()
    _client(service.url, sleep=sleep).find("electricity", "kWh", "FR", 2023)
    assert sleep.sleeps == [0.0]


def test_every_third_request_failing_still_gives_every_answer(service):
    service.faults = every(3, Fault(503))
    client = _client(service.url)
    for i, activity in enumerate(ACTIVITIES[:6]):
        assert client.find(activity, "kg", "GB", 2024).kg_co2e == 1.0 + i
    assert service.statuses[503] == 2  # requests 3 and 6 of 8: 1 2 3! 4 5 6! 7 8
    assert service.statuses[200] == 6


def test_a_timeout_is_retried(service):
    service.faults = first(1, Fault(0))  # the first request hangs until the service stops
    policy = RetryPolicy(attempts=3, base_s=0.01, cap_s=0.01, timeout_s=1)
    assert _client(service.url, policy=policy).find("electricity", "kWh", "GB", 2024).kg_co2e == 0.20705
    assert len(service.requests) == 2


def test_too_many_failures_raise_service_error(service):
    service.faults = always(Fault(503))
    sleep = Recorder()
    with pytest.raises(FactorApiError, match="failed 4 times.*HTTP 503") as err:
        _client(service.url, sleep=sleep).find("electricity", "kWh", "GB", 2024)
    assert isinstance(err.value, ServiceError)  # the chunk goes back to the queue
    assert len(service.requests) == FAST.attempts
    assert len(sleep.sleeps) == FAST.attempts - 1


def test_an_unreachable_service_raises_service_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends
    sleep = Recorder()
    with pytest.raises(ServiceError, match="failed 4 times"):
        _client(f"http://127.0.0.1:{port}", sleep=sleep).find("electricity", "kWh", "GB", 2024)
    assert len(sleep.sleeps) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 302])
def test_other_4xx_is_a_configuration_error_not_retried(service, status):
    service.faults = always(Fault(status, body=b'{"error": "bad api key"}'))
    with pytest.raises(FactorApiConfigError, match=f"HTTP {status}.*bad api key"):
        _client(service.url).find("electricity", "kWh", "GB", 2024)
    assert len(service.requests) == 1


def test_an_answer_that_is_not_a_factor_is_a_service_error(service):
    service.faults = always(Fault(200, body=b'{"activity": "electricity"}'))
    with pytest.raises(FactorApiError, match="not a factor"):
        _client(service.url).find("electricity", "kWh", "GB", 2024)


# -- the rate limit ----------------------------------------------------------------

class CountingCounter(MemoryWindowCounter):
    def __init__(self):
        super().__init__()
        self.hits = 0

    def hit(self, key, window, limit, ttl_epoch):
        self.hits += 1
        return super().hit(key, window, limit, ttl_epoch)


def test_every_request_retries_included_takes_a_token(service):
    service.faults = first(2, Fault(503))
    counter = CountingCounter()
    _client(service.url, limiter=_open_limiter(counter)).find("electricity", "kWh", "GB", 2024)
    assert counter.hits == len(service.requests) == 3


def test_no_token_no_request(service):
    # A window of an hour on a clock that stands still: one call, then full.
    limiter = RateLimiter(MemoryWindowCounter(), "factor-api", 1, 3600, clock=lambda: 7200.5)
    client = _client(service.url, limiter=limiter)
    client.find("electricity", "kWh", "GB", 2024)
    with pytest.raises(RateLimitTimeoutError):
        client.find("electricity", "kWh", "FR", 2023)
    assert len(service.requests) == 1


def test_clients_on_many_threads_share_one_limit(service, aws):
    """Four clients, each with its own RateLimiter over its own
    DynamoWindowCounter on one table (four Lambdas), two threads each, ask
    for 16 different factors at full speed, through every 5th request failing.

    The proof counts, it does not time. The limiter promises at most `limit`
    calls *started* per window, windows being floor(time.time() / per) * per
    in every process. The server only knows when a call *arrived*, and a call
    started at the end of one window may arrive in the next, so counting by
    arrival time would mix windows and flake. Each request instead names in
    X-Sluice-Rate-Window the window its token was counted in, and the server
    counts by that. Two more counts close the loop: every request the server
    saw carried a window (none skipped the limiter), and the server's total
    equals the sum of the window counters in DynamoDB (one token per request,
    retries included). Hence: at most `limit` requests per window reached the
    service, from all clients together.
    """
    clients, table = aws
    limit, key = 5, f"factor-api-{uuid.uuid4().hex[:6]}"
    service.faults = every(5, Fault(503))
    policy = RetryPolicy(attempts=6, base_s=0.01, cap_s=0.05, timeout_s=10, max_wait_s=60)
    lambdas = [HttpFactorLookup(service.url, RateLimiter(DynamoWindowCounter(clients("dynamodb"), table),
                                                         key, limit, 1), policy=policy)
               for _ in range(4)]
    results: dict[str, Factor] = {}
    errors: list[BaseException] = []

    def work(client: HttpFactorLookup, activities: list[str]) -> None:
        try:
            for activity in activities:
                results[activity] = client.find(activity, "kg", "GB", 2024)
        except BaseException as exc:  # noqa: BLE001 (reported by the main thread)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(lambdas[i % 4], ACTIVITIES[2 * i:2 * i + 2]))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert {a: f.kg_co2e for a, f in results.items()} == {a: 1.0 + i for i, a in enumerate(ACTIVITIES)}
    assert service.statuses[503] >= 3  # retries happened, and went through the limiter too
    assert service.by_window[None] == 0
    assert max(service.by_window.values()) <= limit
    items = clients("dynamodb").query(
        TableName=table, KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"RATE#{key}"}}, ConsistentRead=True)["Items"]
    tokens = {int(i["SK"]["S"].removeprefix("WINDOW#")): int(i["hits"]["N"]) for i in items}
    assert tokens == dict(service.by_window)
    assert all(h.get(WINDOW_HEADER) for h in (s.headers for s in service.requests))


# -- caching -------------------------------------------------------------------------

def test_one_request_per_question_however_often_it_is_asked(service):
    client = _client(service.url)
    for _ in range(10):
        for activity in ACTIVITIES[:5]:
            client.find(activity, "kg", "GB", 2024)
    assert len(service.requests) == 5
    assert set(service.by_query.values()) == {1}


def test_clients_sharing_a_job_cache_ask_once(service):
    job_cache = MemoryFactorCache()
    a, b = _client(service.url, cache=job_cache), _client(service.url, cache=job_cache)
    for client in (a, b, a, b):
        for activity in ACTIVITIES[:5]:
            client.find(activity, "kg", "GB", 2024)
        with pytest.raises(FactorNotFound):
            client.find("unobtainium", "kg", "GB", 2024)
    assert len(service.requests) == 6


def test_chunks_of_one_job_on_other_lambdas_share_the_dynamodb_cache(service, aws):
    clients, table = aws
    job = f"job-{uuid.uuid4().hex[:6]}"

    def chunk_worker(job_id: str) -> HttpFactorLookup:
        cache = DynamoFactorCache(clients("dynamodb"), table, job_id, 2_000_000_000)
        return _client(service.url, cache=cache)

    for _ in range(3):
        factor = chunk_worker(job).find("electricity", "kWh", "GB", 2024)
        assert factor == _expected("electricity", "kWh", "GB", 2024, 0.20705)
    assert len(service.requests) == 1
    chunk_worker(f"{job}-other").find("electricity", "kWh", "GB", 2024)  # another job asks again
    assert len(service.requests) == 2
