"""What local_cloud adds in front of moto's server.

1. DynamoDB atomicity. moto's DynamoDB backend checks a condition and applies
   the write (or a whole TransactWriteItems) without a lock, so two requests
   on moto's threaded server can both pass the same condition. Real DynamoDB
   never lets that happen, and Sluice's promises (a chunk counted once, one
   aggregation per job) rest on it, so DynamoDB requests run one at a time.
2. A ledger of AWS calls by caller, service and operation, so the benchmark
   can count what the app did (the pump polls with credentials of its own).
   GET /_sluice/calls reads it; DELETE /_sluice/calls clears it.
"""
from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

LEDGER_PATH = "/_sluice/calls"
_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/aws4_request")


class CallLedger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def add(self, actor: str, service: str, operation: str) -> None:
        with self._lock:
            self._counts[(actor, service, operation)] += 1

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"actor": a, "service": s, "operation": o, "count": n}
                for (a, s, o), n in sorted(self._counts.items())
            ]

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


class AwsMiddleware:
    def __init__(self, ledger: CallLedger | None = None):
        self._app: Callable | None = None
        self.ledger = ledger or CallLedger()
        self._dynamodb = threading.Lock()

    def wrap(self, app: Callable) -> None:
        self._app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") == LEDGER_PATH:
            return self._serve_ledger(environ, start_response)
        actor, service = _caller(environ)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        self.ledger.add(actor, service, _operation(environ, service, target))
        if target.startswith("DynamoDB"):
            with self._dynamodb:
                # Drain the response inside the lock: the write is only done
                # when moto has produced its answer.
                return list(self._app(environ, start_response))
        return self._app(environ, _with_disposition(environ, start_response))

    def _serve_ledger(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "DELETE":
            self.ledger.clear()
        body = json.dumps({"calls": self.ledger.snapshot()}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]


def _with_disposition(environ: dict, start_response: Callable) -> Callable:
    """S3 answers a presigned GET with the Content-Disposition its link asks
    for (`response-content-disposition`), so a browser saves the file under
    its name; moto ignores it. This adds it, for GETs that ask."""
    asked = parse_qs(environ.get("QUERY_STRING", "")).get("response-content-disposition")
    if environ.get("REQUEST_METHOD") != "GET" or not asked:
        return start_response

    def respond(status: str, headers: list[tuple[str, str]], *exc_info: Any):
        kept = [(k, v) for k, v in headers if k.lower() != "content-disposition"]
        return start_response(status, [*kept, ("Content-Disposition", asked[0])], *exc_info)

    return respond


def _caller(environ: dict) -> tuple[str, str]:
    """(access key, service) from the SigV4 signature, in a header or a presigned URL."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = _CREDENTIAL.search(auth)
    if match:
        return match.group(1), match.group(2)
    query = parse_qs(environ.get("QUERY_STRING", ""))
    credential = (query.get("X-Amz-Credential") or [""])[0].split("/")
    if len(credential) == 5:
        return credential[0], credential[3]
    # A browser-style presigned POST carries its signature in the form body.
    return "anonymous", "s3"


def _operation(environ: dict, service: str, target: str) -> str:
    if target:
        return target.rsplit(".", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    method = environ.get("REQUEST_METHOD", "")
    if service == "s3":
        path = environ.get("PATH_INFO", "").strip("/")
        what = "Object" if "/" in path else "Bucket"
        if environ.get("HTTP_RANGE"):
            what += "Range"
        return f"{method}{what}"
    return method
