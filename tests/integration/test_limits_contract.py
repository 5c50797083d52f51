"""One contract, two implementations: the in-memory WindowCounter and
FactorCache keep exactly the promises of their DynamoDB adapters, run here
against moto's real server (local_cloud's EmbeddedAws, whose middleware gives
moto DynamoDB's atomicity), hit from many threads at once."""
from __future__ import annotations

import collections
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config

from chalicelib.adapters.dynamodb_factor_cache import DynamoFactorCache
from chalicelib.adapters.dynamodb_limits import DynamoWindowCounter
from chalicelib.carbon.factor_cache import MemoryFactorCache, NoFactor, cache_key
from chalicelib.carbon.model import Factor
from chalicelib.jobs.model import ServiceError
from chalicelib.limits import MemoryWindowCounter, RateLimiter

TTL = 2_000_000_000


@pytest.fixture(scope="module")
def aws(embedded_stack):
    clients, outputs = embedded_stack
    return clients, outputs["TableName"]


@pytest.fixture(params=["memory", "dynamodb"])
def counter(request):
    if request.param == "memory":
        return MemoryWindowCounter()
    clients, table = request.getfixturevalue("aws")
    return DynamoWindowCounter(clients("dynamodb"), table)


@pytest.fixture(params=["memory", "dynamodb"])
def factor_cache(request):
    """factor_cache(job_id) -> the cache of one job."""
    if request.param == "memory":
        caches: dict[str, MemoryFactorCache] = collections.defaultdict(MemoryFactorCache)
        return caches.__getitem__
    clients, table = request.getfixturevalue("aws")
    return lambda job_id: DynamoFactorCache(clients("dynamodb"), table, job_id, TTL)


def _key() -> str:
    # moto's state lives for the module: every test counts under its own key.
    return f"k-{uuid.uuid4().hex[:8]}"


# -- WindowCounter -----------------------------------------------------------

def test_counts_up_to_the_limit_then_refuses(counter):
    key = _key()
    assert [counter.hit(key, 60, 3, TTL) for _ in range(5)] == [1, 2, 3, None, None]


def test_a_refused_hit_changes_nothing(counter):
    key = _key()
    for _ in range(6):
        counter.hit(key, 60, 2, TTL)
    # Raising the limit shows the count stayed at 2 through four refusals.
    assert counter.hit(key, 60, 10, TTL) == 3


def test_windows_and_keys_count_apart(counter):
    a, b = _key(), _key()
    assert counter.hit(a, 60, 1, TTL) == 1
    assert counter.hit(a, 120, 1, TTL) == 1
    assert counter.hit(b, 60, 1, TTL) == 1
    assert counter.hit(a, 60, 1, TTL) is None


def test_a_limit_below_one_allows_nothing(counter):
    assert counter.hit(_key(), 60, 0, TTL) is None


def test_concurrent_hits_never_pass_the_limit_nor_lose_a_count(counter):
    key = _key()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: counter.hit(key, 60, 25, TTL), range(80)))
    granted = sorted(r for r in results if r is not None)
    assert granted == list(range(1, 26))  # each count handed out exactly once
    assert results.count(None) == 55


def test_the_window_item_has_the_documented_shape(aws):
    clients, table = aws
    key = _key()
    DynamoWindowCounter(clients("dynamodb"), table).hit(key, 1_700_000_040, 5, 1_700_000_160)
    item = clients("dynamodb").get_item(
        TableName=table, Key={"PK": {"S": f"RATE#{key}"}, "SK": {"S": "WINDOW#1700000040"}})["Item"]
    assert item["hits"] == {"N": "1"}
    assert item["expires_at"] == {"N": "1700000160"}


def test_dynamodb_failures_become_service_errors(aws):
    clients, _ = aws
    with pytest.raises(ServiceError, match="DynamoDB failed"):
        DynamoWindowCounter(clients("dynamodb"), "no-such-table").hit(_key(), 60, 5, TTL)
    unreachable = boto3.session.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1",
    ).client("dynamodb", endpoint_url=f"http://127.0.0.1:{_closed_port()}",
             config=Config(retries={"max_attempts": 1}, connect_timeout=2))
    with pytest.raises(ServiceError, match="DynamoDB failed"):
        DynamoWindowCounter(unreachable, "t").hit(_key(), 60, 5, TTL)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the limiter over the shared table, from many threads ----------------------

class SharedClock:
    """One clock for every thread, moved by the test."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_threads_on_a_shared_clock_get_exactly_the_limit_in_every_window(counter):
    """8 threads, each with its own limiter (like 8 Lambdas), hammer
    try_acquire over 4 windows. The test moves the clock to the next window
    only after the threads have made at least 5 x limit attempts in the
    current one, so every window is over-asked by counting, not by timing:
    each window must then have given exactly `limit` calls."""
    key, limit, per, threads = _key(), 4, 10, 8
    clock = SharedClock(1_000_000.5)
    decisions: list = []
    lock, stop = threading.Condition(), threading.Event()

    def worker() -> None:
        limiter = RateLimiter(counter, key, limit, per, clock=clock)
        while not stop.is_set():
            decision = limiter.try_acquire()
            with lock:
                decisions.append(decision)
                lock.notify_all()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    try:
        windows = [1_000_000 + per * i for i in range(4)]
        for window in windows:
            clock.now = window + 0.5
            with lock:
                assert lock.wait_for(
                    lambda w=window: sum(d.window == w for d in decisions) >= 5 * limit, timeout=60)
    finally:
        stop.set()
        for t in pool:
            t.join()
    allowed = collections.Counter(d.window for d in decisions if d.allowed)
    assert allowed == {w: limit for w in windows}


def test_threads_on_the_real_clock_never_pass_the_limit_in_a_window(aws):
    """The same over moto's server on the real clock, 1 s windows, for three
    windows: whatever the timing, no window (as named by the limiter's own
    decision) allowed more than `limit`, and every allowed call is one count
    in the table."""
    clients, table = aws
    key, limit, threads = _key(), 5, 8
    end = (int(time.time()) + 3) * 1.0  # the end of the third window from now
    allowed: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()

    def worker() -> None:
        limiter = RateLimiter(DynamoWindowCounter(clients("dynamodb"), table), key, limit, 1)
        while time.time() < end:
            decision = limiter.try_acquire()
            if decision.allowed:
                with lock:
                    allowed[decision.window] += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert allowed and max(allowed.values()) <= limit
    items = clients("dynamodb").query(
        TableName=table, KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"RATE#{key}"}}, ConsistentRead=True)["Items"]
    in_table = {int(i["SK"]["S"].removeprefix("WINDOW#")): int(i["hits"]["N"]) for i in items}
    assert in_table == dict(allowed)


# -- FactorCache ---------------------------------------------------------------

FACTOR = Factor(activity="electricity", region="GB", year=2024, unit="kWh", kg_co2e=0.20705,
                kg_co2=0.20493, kg_ch4=None, kg_n2o=0.0018, scope=2, source="DESNZ", table="UK")


def test_factor_cache_round_trips_factors_and_not_found(factor_cache):
    job = f"job-{uuid.uuid4().hex[:6]}"
    cache = factor_cache(job)
    key = cache_key("electricity", "kWh", "GB", 2024)
    assert cache.get(key) is None
    cache.put(key, FACTOR)
    cache.put(cache_key("unobtainium", "kg", None, None), NoFactor("no factor for unobtainium"))
    again = factor_cache(job)  # another chunk of the same job, maybe on another Lambda
    assert again.get(key) == FACTOR
    assert again.get(cache_key("unobtainium", "kg", None, None)) == NoFactor("no factor for unobtainium")
    assert factor_cache(f"other-{job}").get(key) is None  # per job


def test_cache_keys_never_collide():
    assert cache_key("a|b", "c", None, None) != cache_key("a", "b|c", None, None)
    assert cache_key("a", "kg", None, 2024) != cache_key("a", "kg", "2024", None)
    assert cache_key("passenger travel", "passenger * km", "GB", 2024) == \
        "passenger travel|passenger * km|GB|2024"


def test_the_factor_item_lives_beside_the_job(aws):
    clients, table = aws
    DynamoFactorCache(clients("dynamodb"), table, "j-shape", 1_800_000_000).put(
        cache_key("electricity", "kWh", "GB", 2024), FACTOR)
    item = clients("dynamodb").get_item(TableName=table, Key={
        "PK": {"S": "JOB#j-shape"}, "SK": {"S": "FACTOR#electricity|kWh|GB|2024"}})["Item"]
    assert item["expires_at"] == {"N": "1800000000"}
    assert '"kg_co2e": 0.20705' in item["answer"]["S"]
