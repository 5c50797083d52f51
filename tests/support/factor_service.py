"""A factor service on 127.0.0.1 implementing the contract in
chalicelib/carbon/factor_api.py, with counters and scheduled faults.

    with FactorService({("electricity", "kWh", "GB", 2024): {...}}) as svc:
        svc.faults = every(3, Fault(429, retry_after="2"))
        ... HttpFactorLookup(svc.url, limiter) ...
        svc.by_query, svc.by_window

Counts:
  requests          every request, in arrival order (Seen records)
  by_query          requests per (activity, unit, region, year) asked
  by_window         requests per X-Sluice-Rate-Window header (the window the
                    client's token was counted in); None when the header was missing
Faults: `faults(n)` is asked for the n-th request (1-based) and returns a Fault
to answer with instead of the factor, or None.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback_server import LoopbackServer

WINDOW_HEADER = "X-Sluice-Rate-Window"
Query = tuple[str, str, "str | None", "int | None"]



@dataclass(frozen=True)
class Fault:
    status: int  # 429, 503, 401...; 0 means "hang until the service stops"
    retry_after: str | None = None
    body: bytes = b'{"error": "scheduled fault"}'


def every(k: int, fault: Fault) -> Callable[[int], Fault | None]:
    """Every k-th request fails with `fault`."""
    return lambda n: fault if n % k == 0 else None


def first(count: int, fault: Fault) -> Callable[[int], Fault | None]:
    """The first `count` requests fail with `fault`."""
    return lambda n: fault if n <= count else None


def always(fault: Fault) -> Callable[[int], Fault | None]:
    return lambda n: fault


@dataclass(frozen=True)
class Seen:
    number: int
    query: Query
    window: int | None
    received_at: float
    headers: dict[str, str] = field(default_factory=dict)


def factor_body(activity: str, unit: str, region: str, year: int, kg_co2e: float) -> dict[str, Any]:
    return {"activity": activity, "region": region, "year": year, "unit": unit, "kg_co2e": kg_co2e,
            "kg_co2": round(kg_co2e * 0.98, 6), "kg_ch4": None, "kg_n2o": 0.0001, "scope": 2,
            "source": "test service", "table": "test table"}


class FactorService(LoopbackServer):
    method = "GET"

    def __init__(self, factors: dict[Query, dict[str, Any]], default_region: str = "GB",
                 latest_year: int = 2024):
        super().__init__()
        self.factors = factors
        self.default_region = default_region
        self.latest_year = latest_year
        self.faults: Callable[[int], Fault | None] = lambda n: None
        self.requests: list[Seen] = []
        self.by_query: Counter[Query] = Counter()
        self.by_window: Counter[int | None] = Counter()
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()

    # -- serving ----------------------------------------------------------

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query: Query = (params.get("activity", ""), params.get("unit", ""), params.get("region"),
                        int(params["year"]) if "year" in params else None)
        raw_window = req.headers.get(WINDOW_HEADER)
        window = int(raw_window) if raw_window else None
        with self._lock:
            number = len(self.requests) + 1
            self.requests.append(Seen(number, query, window, time.time(), dict(req.headers.items())))
            self.by_query[query] += 1
            self.by_window[window] += 1
        fault = self.faults(number)
        if parts.path != "/factors":
            return self._send(req, 404, {"error": f"no route {parts.path}"})
        if fault is not None:
            if fault.status == 0:
                self._release.wait(60)
                return  # the client has given up; answer nothing
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return self._send_raw(req, fault.status, fault.body, headers)
        activity, unit, region, year = query
        key = (activity, unit, region or self.default_region, year or self.latest_year)
        if key not in self.factors:
            return self._send(req, 404, {"error": f"no factor for {activity} in {unit} "
                                                  f"({key[2]}, {key[3]})"})
        return self._send(req, 200, self.factors[key])

    def _send(self, req: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        self._send_raw(req, status, json.dumps(body).encode(), {})

    def _send_raw(self, req: BaseHTTPRequestHandler, status: int, body: bytes,
                  headers: dict[str, str]) -> None:
        with self._lock:
            self.statuses[status] += 1
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(body)
