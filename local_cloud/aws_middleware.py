"""What local_cloud adds in front of moto's server.

1. DynamoDB atomicity. moto's DynamoDB backend checks a condition and applies
   the write (or a whole TransactWriteItems) without a lock, so two requests
   on moto's threaded server can both pass the same condition. Real DynamoDB
   never lets that happen, and Sluice's promises (a chunk counted once, one
   aggregation per job) rest on it, so DynamoDB requests run one at a time.
2. A ledger of AWS calls by caller, service and operation, so the benchmark
   can count what the app did (the pump polls with credentials of its own),
   and of what each call touched (the operation and the resource's ARN, as
   IAM judges the call), so a test can hold the code to its IAM policy.
   A presigned request counts as its signer's: S3 authorises it as theirs.
   GET /_sluice/calls reads it; DELETE /_sluice/calls clears it.
"""
from __future__ import annotations

import io
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

LEDGER_PATH = "/_sluice/calls"
# The account moto gives every resource it makes.
ACCOUNT = "123456789012"
# access key / date / region / service / aws4_request
_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/([^/]*)/([^/]+)/aws4_request")


class CallLedger:
    """Calls counted by (caller, service, operation), and what they touched
    by (caller, service, operation, resource ARN). A transaction touches one
    resource per item, named like "TransactWriteItems.Update"; an S3 object
    is named by its key's first folder ("uploads/<key>"), so the ledger
    stays small however many files a run makes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._touched: Counter[tuple[str, str, str, str]] = Counter()

    def add(self, actor: str, service: str, operation: str,
            touched: Iterable[tuple[str, str]] = ()) -> None:
        with self._lock:
            self._counts[(actor, service, operation)] += 1
            self._touched.update((actor, service, what, resource) for what, resource in touched)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"actor": a, "service": s, "operation": o, "count": n}
                for (a, s, o), n in sorted(self._counts.items())
            ]

    def accesses(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"actor": a, "service": s, "operation": o, "resource": r, "count": n}
                for (a, s, o, r), n in sorted(self._touched.items())
            ]

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
            self._touched.clear()

    def serve(self, method: str) -> bytes:
        """The answer to GET (or DELETE, which clears it first) /_sluice/calls."""
        if method == "DELETE":
            self.clear()
        return json.dumps({"calls": self.snapshot(), "accesses": self.accesses()}).encode()


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
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        body = _buffered_body(environ) if _reads_body(environ, target) else b""
        actor, region, service = _caller(environ, body)
        operation = _operation(environ, service, target)
        self.ledger.add(actor, service, operation,
                        _touched(environ, service, target, operation, body, region))
        if target.startswith("DynamoDB"):
            with self._dynamodb:
                # Drain the response inside the lock: the write is only done
                # when moto has produced its answer.
                return list(self._app(environ, start_response))
        return self._app(environ, _with_disposition(environ, start_response))

    def _serve_ledger(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        body = self.ledger.serve(environ.get("REQUEST_METHOD", "GET"))
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


def credential(authorization: str, query: str = "") -> tuple[str, str, str] | None:
    """(access key, region, service) of a SigV4 signature, in a header or a presigned URL."""
    match = _CREDENTIAL.search(authorization)
    if match:
        return match.group(1), match.group(2), match.group(3)
    scope = (parse_qs(query).get("X-Amz-Credential") or [""])[0].split("/")
    if len(scope) == 5:
        return scope[0], scope[2], scope[3]
    return None


def _caller(environ: dict, body: bytes) -> tuple[str, str, str]:
    """(access key, region, service) of the request's signer."""
    found = credential(environ.get("HTTP_AUTHORIZATION", ""), environ.get("QUERY_STRING", ""))
    if found:
        return found
    # A browser-style presigned POST carries its signature in the form body.
    scope = (_form_field(body, "x-amz-credential") or "").split("/")
    if len(scope) == 5:
        return scope[0], scope[2], scope[3]
    return "anonymous", "", "s3"


def _reads_body(environ: dict, target: str) -> bool:
    # JSON requests name their table or queue in the body; an S3 POST to a
    # bucket is a form upload (its key and signature in the form) or a
    # DeleteObjects (its keys in the XML).
    s3_bucket_post = (environ.get("REQUEST_METHOD") == "POST" and not target
                      and "/" not in environ.get("PATH_INFO", "").strip("/"))
    return bool(target) or s3_bucket_post


def _buffered_body(environ: dict) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if not length:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _form_field(body: bytes, name: str) -> str | None:
    match = re.search(rb'name="' + re.escape(name.encode()) + rb'"\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]*)',
                      body[:65536], re.IGNORECASE)
    return match.group(1).decode(errors="replace") if match else None


def _touched(environ: dict, service: str, target: str, operation: str, body: bytes,
             region: str) -> list[tuple[str, str]]:
    """(operation, resource ARN) for each thing the request acts on, `operation`
    being the request's (_operation)."""
    if service == "s3" and not target:
        return _s3_touched(environ, body)
    try:
        request = json.loads(body) if body else {}
    except ValueError:
        request = {}
    if target.startswith("DynamoDBStreams"):
        return [(operation, request.get("StreamArn") or _arn("dynamodb", region, "table/*/stream/*"))]
    if target.startswith("DynamoDB"):
        return _dynamodb_touched(operation, request, region)
    if target.startswith("AmazonSQS"):
        queue = (request.get("QueueUrl") or "").rstrip("/").rsplit("/", 1)[-1] or request.get("QueueName")
        return [(operation, _arn("sqs", region, queue) if queue else "*")]
    return [(operation, "*")]


def _arn(service: str, region: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


def _dynamodb_touched(operation: str, request: dict, region: str) -> list[tuple[str, str]]:
    def table(name: str) -> str:
        return name if name.startswith("arn:") else _arn("dynamodb", region, f"table/{name}")

    if operation in ("TransactWriteItems", "TransactGetItems"):
        return [(f"{operation}.{kind}", table(action["TableName"]))
                for item in request.get("TransactItems", []) for kind, action in item.items()]
    if operation in ("BatchWriteItem", "BatchGetItem"):
        return [(operation, table(name)) for name in request.get("RequestItems", {})]
    if not request.get("TableName"):
        return [(operation, "*")]
    index = f"/index/{request['IndexName']}" if request.get("IndexName") else ""
    return [(operation, table(request["TableName"]) + index)]


def _s3_object(bucket: str, key: str) -> str:
    folder = key.split("/", 1)[0] + "/" if "/" in key else ""
    return f"arn:aws:s3:::{bucket}/{folder}<key>"


def _s3_touched(environ: dict, body: bytes) -> list[tuple[str, str]]:
    method = environ.get("REQUEST_METHOD", "")
    bucket, _, key = environ.get("PATH_INFO", "").lstrip("/").partition("/")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if not bucket:
        return [("ListBuckets", "*")]
    if key:
        if method == "PUT" and environ.get("HTTP_X_AMZ_COPY_SOURCE"):
            # IAM asks for s3:GetObject on the source as well.
            source_bucket, _, source_key = environ["HTTP_X_AMZ_COPY_SOURCE"].lstrip("/").partition("/")
            return [("CopyObject", _s3_object(bucket, key)),
                    ("CopyObject.Source", _s3_object(source_bucket, source_key))]
        multipart = "uploadId" in query
        operation = {
            "GET": "GetObject", "HEAD": "HeadObject",
            "PUT": "UploadPart" if multipart else "PutObject",
            "POST": "CompleteMultipartUpload" if multipart else "CreateMultipartUpload",
            "DELETE": "AbortMultipartUpload" if multipart else "DeleteObject",
        }.get(method, method)
        return [(operation, _s3_object(bucket, key))]
    if method == "POST" and "delete" in query:
        keys = [k.decode() for k in re.findall(rb"<Key>([^<]*)</Key>", body)]
        return [("DeleteObjects", _s3_object(bucket, k)) for k in sorted(set(keys))]
    if method == "POST":
        return [("PostObject", _s3_object(bucket, _form_field(body, "key") or ""))]
    if method == "GET" and query.get("list-type") == ["2"]:
        return [("ListObjectsV2", f"arn:aws:s3:::{bucket}")]
    subresource = next(iter(query), "")
    return [(f"{method}Bucket" + (f"?{subresource}" if subresource else ""), f"arn:aws:s3:::{bucket}")]


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
