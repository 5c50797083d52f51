"""Signed callbacks: what Sluice POSTs to a job's `callback_url`.

The body is JSON. Two headers let the receiver trust and de-duplicate it:

    X-Sluice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, b"<t>." + body)>
    X-Sluice-Event-Id:  the same id on every attempt of one notice

The timestamp is signed with the body, so a captured request cannot be
replayed after the tolerance (5 minutes) has passed; within it, the event id
lets the receiver drop repeats (delivery is at least once). `verify` below is
the receiver's recipe (VERIFYING.md shows it verbatim): it needs only the
standard library.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

from ..jobs.model import InputError

SIGNATURE_HEADER = "X-Sluice-Signature"
EVENT_ID_HEADER = "X-Sluice-Event-Id"
USER_AGENT = "Sluice-Callback/1"

# 12 attempts: 5 s, 10 s, ... 640 s, then 900 s (SQS's longest delay) thrice,
# about an hour in all: long enough to ride out a receiver's deploy or
# outage, short enough that a dead endpoint reaches the DLQ the same day.
MAX_ATTEMPTS = 12
FIRST_DELAY_S = 5
MAX_DELAY_S = 900  # SQS DelaySeconds cannot exceed 15 minutes


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: bytes, body: bytes, header: str, tolerance_s: int = 300,
           now: float | None = None) -> bool:
    """True if `header` (X-Sluice-Signature) signs `body` (the raw request
    bytes, before any JSON parsing) with `secret`, less than `tolerance_s`
    seconds from now. Several v1= values may be given (a key being rotated)."""
    timestamp, signatures = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and timestamp is None:
            timestamp = value
        elif name == "v1":
            signatures.append(value)
    if not timestamp or not (timestamp.isascii() and timestamp.isdigit()) or not signatures:
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance_s:
        return False
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    # compare_digest on bytes: constant time, and no TypeError on non-ASCII input.
    return any(hmac.compare_digest(expected.encode(), s.encode()) for s in signatures)


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    status: int | None
    error: str | None
    #: worth trying again later (5xx, 429, timeout, connection error)
    retryable: bool


@functools.cache
def _shared_pool() -> urllib3.PoolManager:
    return urllib3.PoolManager(maxsize=8)


def deliver(url: str, body: bytes, secret: bytes, event_id: str, timeout_s: float = 10,
            pool: urllib3.PoolManager | None = None, now: Callable[[], float] = time.time
            ) -> DeliveryResult:
    """POST `body` to `url`, signed, once.

    2xx is delivered. 5xx, 429, a timeout or a refused connection are the
    receiver's passing trouble: retryable. Any other answer is the receiver
    saying no for good (400 it cannot read us, 401/403 it does not want us,
    404/410 the endpoint is gone) or a redirect, which is not followed: a
    redirect could point at an address validate_callback_url would refuse.
    Callers should run validate_callback_url again just before delivering,
    as the host's DNS answer may have changed since the job was accepted.
    """
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(secret, body, int(now())),
        EVENT_ID_HEADER: event_id,
    }
    try:
        resp = (pool or _shared_pool()).request(
            "POST", url, body=body, headers=headers, retries=False, redirect=False,
            timeout=urllib3.Timeout(total=timeout_s), preload_content=False)
    except urllib3.exceptions.HTTPError as exc:
        return DeliveryResult(False, None, f"{type(exc).__name__}: {exc}", retryable=True)
    try:
        # A receiver's answer is read only this far: a huge body must not fill memory.
        excerpt = resp.read(512).decode("utf-8", errors="replace")
    except urllib3.exceptions.HTTPError as exc:
        return DeliveryResult(False, resp.status, f"{type(exc).__name__}: {exc}", retryable=True)
    finally:
        resp.close()
        resp.release_conn()
    if 200 <= resp.status < 300:
        return DeliveryResult(True, resp.status, None, retryable=False)
    retryable = resp.status >= 500 or resp.status == 429
    return DeliveryResult(False, resp.status, f"HTTP {resp.status}: {excerpt}".strip(), retryable)


def next_delay(attempt: int, rng: Callable[[], float] = random.random) -> int:
    """Seconds to wait before attempt `attempt + 1`, after `attempt` (>= 1)
    failed: 5, 10, 20, ... doubling, within +-20 % jitter, at most 900."""
    if attempt < 1:
        raise ValueError(f"attempts count from 1, got {attempt}")
    step = min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** min(attempt - 1, 16))
    return max(1, min(MAX_DELAY_S, round(step * (0.8 + 0.4 * rng()))))


def validate_callback_url(url: str, allow_private: bool,
                          resolve: Callable[..., list] = socket.getaddrinfo) -> str:
    """`url` if Sluice may POST to it, else InputError saying why.

    Unless `allow_private` (local runs, tests), every address the host
    resolves to must be public: a callback must not let a user make Sluice
    call into its own network (loopback, private ranges, link-local, and so
    the instance metadata service at 169.254.169.254).
    """
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"callback_url {url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise InputError(f"callback_url must be an http:// or https:// URL, got {url!r}")
    host = parts.hostname
    if not host:
        raise InputError(f"callback_url {url!r} has no host")
    if allow_private:
        return url
    try:
        infos = resolve(host, port or (443 if parts.scheme == "https" else 80),
                        type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(f"callback_url host {host!r} cannot be resolved ({exc})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            raise InputError(
                f"callback_url host {host!r} resolves to {address}, a private, loopback or "
                "link-local address; callbacks go to public addresses only")
    if not infos:
        raise InputError(f"callback_url host {host!r} resolves to no address")
    return url
