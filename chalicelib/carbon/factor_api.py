"""FactorLookup answered by an outside HTTP factor service, at a shared rate.

The contract a factor service implements
----------------------------------------
    GET {base_url}/factors?activity=<activity>&unit=<unit>[&region=<region>][&year=<year>]

    activity  the activity as the row names it, e.g. "electricity"
    unit      the row's unit, as pint names it ("kilowatt_hour", "liter",
              "kilometer * passenger", "kilometer * metric_ton", "meter ** 3");
              answer with the factor of the same dimension
    region    omitted when the row has none: answer for your default region
    year      omitted when the row has none: answer with your latest year

    Sluice sends `Accept: application/json`, `User-Agent: Sluice-FactorClient/1`
    and `X-Sluice-Rate-Window: <epoch start of the rate window the call was
    counted in>` (informational).

    200  application/json, the factor:
         {"activity": "electricity", "region": "GB", "year": 2024, "unit": "kWh",
          "kg_co2e": 0.20705, "kg_co2": 0.20493, "kg_ch4": 0.00032, "kg_n2o": 0.0018,
          "scope": 2, "source": "DESNZ 2024", "table": "UK electricity"}
         (kg_co2 / kg_ch4 / kg_n2o may be null; `unit` is the factor's own
         denominator, which may differ from the row's, e.g. "MWh")
    404  {"error": "<why>"}: no such factor; the text becomes the row's error
    429  too many requests; a `Retry-After` (seconds or HTTP date) is honoured
         up to a cap, otherwise Sluice backs off exponentially
    5xx  retried with exponential backoff and jitter

    Any other status (400, 401, 403, a redirect...) means Sluice is configured
    wrongly for this service; see FactorApiConfigError.

Every request, retries included, first takes a token from the RateLimiter
shared by all workers, so together they stay under the service's rate.

Built once per job (Pipeline.services["factor_api"]), e.g.:

    HttpFactorLookup(
        settings.factor_api_url,
        RateLimiter(DynamoWindowCounter(dynamodb, table), "factor-api",
                    settings.factor_api_rate_per_second, per_seconds=1),
        cache=DynamoFactorCache(dynamodb, table, job_id, ttl_epoch))

Mind the worker's Lambda timeout: one lookup may take up to
attempts x (max_wait_s + timeout_s) plus backoff in the worst case.
"""
from __future__ import annotations

import dataclasses
import email.utils
import functools
import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import urllib3

from ..jobs.model import ServiceError
from ..limits import RateLimiter
from .factor_cache import Answer, FactorCache, NoFactor, cache_key
from .model import Factor, FactorNotFound

WINDOW_HEADER = "X-Sluice-Rate-Window"
USER_AGENT = "Sluice-FactorClient/1"


class FactorApiError(ServiceError):
    """The factor service failed every attempt, or answered something that is
    not a factor. A ServiceError: the chunk goes back to the queue."""


class FactorApiConfigError(FactorApiError):
    """The service refused the request itself (400, 401, 403, a redirect...).

    Not a FactorNotFound: that would turn a wrong URL or key into an error on
    every row and a job that "completes". Not an InputError either: the user's
    file is fine. As a ServiceError the chunk is retried and, while the
    configuration stays wrong, lands in the DLQ, from where it can be redriven
    once an operator has fixed it; the alarm on the DLQ tells them.
    """


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    #: exponential backoff: attempt n waits about base_s * 2**(n-1), at most cap_s
    base_s: float = 0.5
    cap_s: float = 20.0
    #: a 429's Retry-After is honoured up to this many seconds
    retry_after_cap_s: float = 30.0
    timeout_s: float = 10.0
    #: how long a call may wait for a rate-limit token before the chunk is given back
    max_wait_s: float = 60.0

    def backoff(self, attempt: int, rng: Callable[[], float]) -> float:
        # "Equal jitter": at least half the step, so retries do back off, and
        # spread over the other half so workers do not retry in step.
        step = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        return step / 2 + rng() * step / 2


@functools.cache
def _shared_pool() -> urllib3.PoolManager:
    # One pool per process, built on first use, so connections are reused
    # across the lookups of every job a warm Lambda runs.
    return urllib3.PoolManager(maxsize=16)


class HttpFactorLookup:
    def __init__(self, base_url: str, limiter: RateLimiter, cache: FactorCache | None = None,
                 policy: RetryPolicy = RetryPolicy(), pool: urllib3.PoolManager | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: Callable[[], float] = random.random):
        if not base_url:
            raise ValueError("the factor service needs a base URL")
        self._base_url = base_url.rstrip("/")
        self._limiter = limiter
        self._shared = cache
        self._policy = policy
        self._pool = pool
        self._sleep = sleep
        self._rng = rng
        self._lock = threading.Lock()
        self._memo: dict[str, Answer] = {}

    def find(self, activity: str, unit: str, region: str | None, year: int | None) -> Factor:
        answer = self._answer(activity, unit, region, year)
        if isinstance(answer, NoFactor):
            raise FactorNotFound(answer.reason)
        return answer

    def _answer(self, activity: str, unit: str, region: str | None, year: int | None) -> Answer:
        key = cache_key(activity, unit, region, year)
        with self._lock:
            answer = self._memo.get(key)
        if answer is None and self._shared is not None:
            answer = self._shared.get(key)
        if answer is None:
            answer = self._ask(activity, unit, region, year)
            if self._shared is not None:
                self._shared.put(key, answer)
        with self._lock:
            self._memo[key] = answer
        return answer

    def _ask(self, activity: str, unit: str, region: str | None, year: int | None) -> Answer:
        params = {"activity": activity, "unit": unit}
        if region is not None:
            params["region"] = region
        if year is not None:
            params["year"] = str(year)
        url = f"{self._base_url}/factors?{urlencode(params)}"
        pool = self._pool or _shared_pool()
        policy = self._policy
        last = ""
        for attempt in range(1, policy.attempts + 1):
            token = self._limiter.acquire(policy.max_wait_s)
            headers = {"Accept": "application/json", "User-Agent": USER_AGENT,
                       WINDOW_HEADER: str(token.window)}
            try:
                resp = pool.request("GET", url, headers=headers, retries=False, redirect=False,
                                    timeout=urllib3.Timeout(total=policy.timeout_s))
            except urllib3.exceptions.HTTPError as exc:  # refused, reset, timed out
                last = f"{type(exc).__name__}: {exc}"
                delay = policy.backoff(attempt, self._rng)
            else:
                if resp.status == 200:
                    return _factor_from(resp.data, url)
                if resp.status == 404:
                    return NoFactor(_error_text(resp.data) or
                                    f"no factor for {activity!r} in {unit!r} "
                                    f"(region {region or 'default'}, year {year or 'latest'})")
                last = f"HTTP {resp.status}: {_excerpt(resp.data)}"
                if resp.status == 429:
                    delay = _retry_after(resp.headers.get("Retry-After"), policy.retry_after_cap_s)
                    if delay is None:
                        delay = policy.backoff(attempt, self._rng)
                elif resp.status >= 500:
                    delay = policy.backoff(attempt, self._rng)
                else:
                    raise FactorApiConfigError(
                        f"the factor service refused {url} ({last}); check SLUICE_FACTOR_API_URL "
                        "and the service's access rules")
            if attempt < policy.attempts:
                self._sleep(delay)
        raise FactorApiError(f"the factor service failed {policy.attempts} times for {url}; last: {last}")


def _retry_after(value: str | None, cap_s: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), cap_s)


def _excerpt(data: bytes, limit: int = 200) -> str:
    text = data[:limit].decode("utf-8", errors="replace")
    return text + ("..." if len(data) > limit else "")


def _error_text(data: bytes) -> str:
    try:
        body = json.loads(data)
    except ValueError:
        return _excerpt(data).strip()
    return str(body.get("error") or "") if isinstance(body, dict) else ""


def _factor_from(data: bytes, url: str) -> Factor:
    try:
        body: dict[str, Any] = json.loads(data)
        return Factor(
            activity=str(body["activity"]), region=str(body["region"]), year=int(body["year"]),
            unit=str(body["unit"]), kg_co2e=float(body["kg_co2e"]),
            kg_co2=_gas(body.get("kg_co2")), kg_ch4=_gas(body.get("kg_ch4")),
            kg_n2o=_gas(body.get("kg_n2o")), scope=int(body["scope"]),
            source=str(body["source"]), table=str(body["table"]),
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise FactorApiError(
            f"the factor service answered {url} with something that is not a factor "
            f"({type(exc).__name__}: {exc}): {_excerpt(data)}") from None


def _gas(value: Any) -> float | None:
    return None if value is None else float(value)
