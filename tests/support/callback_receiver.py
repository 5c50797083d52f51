"""A callback receiver on 127.0.0.1 that records what Sluice POSTs to it.

    with CallbackReceiver() as rx:
        rx.answer_first(2, 500)         # the first two requests get 500, then 200
        ... deliver(rx.url + "/hook", ...) ...
        rx.wait_for(3)                  # blocks until 3 requests arrived (or raises)
        rx.requests[-1].headers["x-sluice-signature"], rx.requests[-1].body

`recipe_verify()` is the `verify` a receiver gets by pasting the recipe of
chalicelib/notify/VERIFYING.md: tests check signatures exactly as users will.

`answer_first(n, status)` answers the first n requests with `status`;
`hold_first(n)` keeps the first n requests waiting without an answer until the
receiver stops (or `release()`), which any client timeout must notice. Later
requests get `default_status` (200).
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.support.loopback_server import LoopbackServer

VERIFYING_MD = Path(__file__).resolve().parents[2] / "chalicelib" / "notify" / "VERIFYING.md"
HOLD = -1  # a planned "status" meaning: do not answer until released



def recipe_code() -> str:
    """The first Python block of VERIFYING.md: the receiver's recipe."""
    match = re.search(r"```python\n(.*?)```", VERIFYING_MD.read_text(), re.S)
    assert match, f"no python block in {VERIFYING_MD}"
    return match.group(1)


def recipe_verify() -> Callable[..., bool]:
    namespace: dict[str, Any] = {}
    exec(recipe_code(), namespace)  # standard library only: it runs on its own
    return namespace["verify"]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    answered: int  # the status answered with (HOLD if held)

    def json(self) -> Any:
        return json.loads(self.body)


class CallbackReceiver(LoopbackServer):
    method = "POST"

    def __init__(self, default_status: int = 200):
        super().__init__()
        self.default_status = default_status
        self.requests: list[Received] = []
        self._plan: list[int] = []
        self._cond = threading.Condition()

    # -- what to answer ---------------------------------------------------

    def answer_first(self, count: int, status: int) -> None:
        with self._cond:
            self._plan.extend([status] * count)

    def hold_first(self, count: int) -> None:
        self.answer_first(count, HOLD)

    def release(self) -> None:
        self._release.set()


    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The first `count` requests, once they have arrived; AssertionError
        after `timeout` seconds (a generous bound, for a hung test only)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} callbacks, got {len(self.requests)}")
                self._cond.wait(left)
            return self.requests[:count]

    # -- serving ----------------------------------------------------------

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        body = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        with self._cond:
            status = self._plan.pop(0) if self._plan else self.default_status
            self.requests.append(Received(req.command, req.path,
                                          {k.lower(): v for k, v in req.headers.items()}, body, status))
            self._cond.notify_all()
        if status == HOLD:
            self._release.wait(120)
            return  # the client has given up; answer nothing
        payload = json.dumps({"status": status}).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(payload)))
        req.end_headers()
        req.wfile.write(payload)
