"""What the app asked of AWS over a test session, read from the call ledgers
of each `python -m local_cloud` the session starts: the embedded AWS's and the
WebSocket gateway's (@connections), each at GET /_sluice/calls.

A ledger counts every call since its process started; the recorder keeps the
difference between a cloud's ledgers when it was ready and when it stopped
(or now, for one still running), so the stack's deployment and the key it
issues at start are left out.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, NamedTuple

import requests

from local_cloud.aws_middleware import LEDGER_PATH
from local_cloud.cloud import LAMBDA_ACCESS_KEY

# Who signs as the app: its Lambda handlers (local_cloud's workers), and its
# API, run by Chalice's local server inside local_cloud (and by `chalice
# local` in one test), which signs with local_cloud's default key. Tests sign
# with a key of their own, the pump with "local-pump".
API_ACCESS_KEY = "local"
APP_ACCESS_KEYS = (LAMBDA_ACCESS_KEY, API_ACCESS_KEY)
TEST_ACCESS_KEY = "e2e-test"


class Access(NamedTuple):
    stage: str  # the local cloud's (its resources are sluice-<stage>-*)
    actor: str
    service: str
    operation: str
    resource: str


class AwsCallRecorder:
    def __init__(self) -> None:
        self._running: dict[int, tuple[Any, Counter[Access]]] = {}
        self._stopped: Counter[Access] = Counter()
        self.clouds = 0
        #: why some cloud's calls could not be read (its ledger did not answer)
        self.unread: list[str] = []

    def started(self, cloud: Any) -> None:
        """`cloud` (a tests.e2e.conftest.LocalCloudProcess) is ready."""
        self._running[cloud.process.pid] = (cloud, _read(cloud))
        self.clouds += 1

    def stopping(self, process: Any) -> None:
        entry = self._running.pop(process.pid, None)
        if entry is None:
            return
        cloud, baseline = entry
        try:
            self._stopped.update(_read(cloud) - baseline)
        except requests.RequestException as exc:  # a teardown goes on: the check says it
            self.unread.append(f"{cloud.aws_url}: {exc!r}")

    def accesses(self, actors: tuple[str, ...] = APP_ACCESS_KEYS) -> Counter[Access]:
        """Every (operation, resource) the given callers touched, with counts."""
        total = Counter(self._stopped)
        for cloud, baseline in self._running.values():
            total.update(_read(cloud) - baseline)
        return Counter({a: n for a, n in total.items() if a.actor in actors})


# One for the whole session: pytest imports tests/e2e/conftest.py as
# "conftest", and tests importing its helpers load it again under another
# name, so a recorder kept there would be two.
AWS_CALLS = AwsCallRecorder()


def _stage(cloud: Any) -> str:
    """The --stage the cloud was started with (local_cloud's default: local)."""
    args = list(cloud.process.args)
    return args[args.index("--stage") + 1] if "--stage" in args else "local"


def _read(cloud: Any) -> Counter[Access]:
    ws_http = cloud.ws_url.replace("ws://", "http://", 1)
    found: Counter[Access] = Counter()
    for base in (cloud.aws_url, ws_http):
        answer = requests.get(f"{base}{LEDGER_PATH}", timeout=30)
        answer.raise_for_status()
        for entry in answer.json()["accesses"]:
            count = entry.pop("count")
            found[Access(stage=_stage(cloud), **entry)] += count
    return found
