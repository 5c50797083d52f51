"""Sluice's REST API over HTTP, for the command-line client and scripts.

    client = SluiceClient("http://127.0.0.1:8000", api_key=None)
    created = client.create_upload("sales.csv", processor="profile")
    client.upload(created["upload"], Path("sales.csv"))
    job = client.get_job(created["job_id"])

The API key goes to the API only, as `Authorization: Bearer <key>`; presigned
S3 links (the upload, redirected downloads) carry their own signature and
never see it. Throttled reads (429) are retried after the Retry-After the API asks for.

Tests hand the client a `transport` (a requests adapter) in place of the
network, and a `sleep` that does not wait.
"""
from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import BaseAdapter

from .multipart import FileChangedError, MultipartFileBody


class SluiceClientError(Exception):
    """Base of the errors the client raises; the message is for people."""


class SluiceApiError(SluiceClientError):
    """The API (or S3, for a presigned link) answered with an error status."""

    def __init__(self, status: int, message: str, method: str, where: str):
        super().__init__(f"{message} (HTTP {status} from {method} {where})")
        self.status = status
        self.message = message


class SluiceUnreachableError(SluiceClientError):
    """No answer: refused connection, unknown host or timeout."""


DEFAULT_API_URL = "http://127.0.0.1:8000"
API_TIMEOUT_S = 30
# (connect, read): S3 answers an upload only after its last byte, and a
# presigned download may be a big report.
TRANSFER_TIMEOUT_S = (10, 300)
MAX_THROTTLE_WAITS = 20
LONGEST_THROTTLE_WAIT_S = 60.0
REDIRECTS = (301, 302, 303, 307, 308)
DOWNLOAD_BLOCK_BYTES = 1024 * 1024


class SluiceClient:
    """`sleep` is how the client waits, for a 429's Retry-After and between
    polls of a job; `transport` replaces the network for both the API and
    presigned links."""

    def __init__(self, base_url: str = DEFAULT_API_URL, api_key: str | None = None, *,
                 transport: BaseAdapter | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 max_throttle_waits: int = MAX_THROTTLE_WAITS):
        self.base_url = base_url.rstrip("/")
        self.sleep = sleep
        self._api = _session(transport)
        if api_key:
            self._api.headers["Authorization"] = f"Bearer {api_key}"
        # Presigned links are signed already: a separate session, so the
        # API's key is never sent to S3.
        self._presigned = _session(transport)
        self._max_throttle_waits = max_throttle_waits

    # -- the routes -------------------------------------------------------

    def create_upload(self, filename: str, processor: str | None = None,
                      options: dict[str, Any] | None = None, callback_url: str | None = None) -> dict:
        """POST /uploads: the new job and its presigned S3 POST."""
        body: dict[str, Any] = {"filename": filename, "options": options or {}}
        if processor:
            body["processor"] = processor
        if callback_url:
            body["callback_url"] = callback_url
        return self._json("POST", "/uploads", json=body)

    def upload(self, upload: dict, path: Path) -> None:
        """Sends the file to the presigned POST that create_upload returned;
        the upload itself starts the job."""
        body = MultipartFileBody(upload["fields"], path)
        url = upload["url"]
        try:
            resp = self._presigned.post(url, data=body, headers={"Content-Type": body.content_type},
                                        timeout=TRANSFER_TIMEOUT_S)
        except requests.RequestException as exc:
            raise SluiceUnreachableError(
                f"the upload to {_without_query(url)} failed: {_reason(exc)}") from exc
        except FileChangedError as exc:
            raise SluiceClientError(str(exc)) from None
        if resp.status_code >= 300:
            raise SluiceApiError(resp.status_code, _error_message(resp), "POST", _without_query(url))

    def get_job(self, job_id: str) -> dict:
        return self._json("GET", f"/jobs/{quote(job_id, safe='')}")

    def list_jobs(self, limit: int = 20) -> list[dict]:
        return self._json("GET", "/jobs", params={"limit": limit})["jobs"]

    def download(self, link: str, dest: Path) -> Path:
        """Saves the output at `link` (a job's links.result, .report or .rows)
        to `dest`, following the API's redirect to a presigned link. The file
        appears complete or not at all."""
        resp = self._send("GET", link, stream=True)
        where = link
        if resp.status_code in REDIRECTS:
            location = resp.headers["Location"]
            where = _without_query(location)
            resp.close()
            try:
                resp = self._presigned.get(location, stream=True, timeout=TRANSFER_TIMEOUT_S)
            except requests.RequestException as exc:
                raise SluiceUnreachableError(f"the download from {where} failed: {_reason(exc)}") from exc
            if resp.status_code >= 300:
                raise SluiceApiError(resp.status_code, _error_message(resp), "GET", where)
        partial = dest.with_name(dest.name + ".part")
        try:
            with resp, partial.open("wb") as file:
                for block in resp.iter_content(DOWNLOAD_BLOCK_BYTES):
                    file.write(block)
        except requests.RequestException as exc:
            partial.unlink(missing_ok=True)
            raise SluiceUnreachableError(f"the download from {where} broke off: {_reason(exc)}") from exc
        partial.replace(dest)
        return dest

    # -- HTTP ---------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self._send(method, path, **kwargs)
        try:
            return resp.json()
        except ValueError:
            raise SluiceApiError(resp.status_code, f"expected JSON, got {_snippet(resp)!r}",
                                 method, path) from None

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.base_url + path
        for _ in range(self._max_throttle_waits + 1):
            try:
                # Redirects are never followed with the key: download() takes
                # the one the API gives to a presigned link itself.
                resp = self._api.request(method, url, timeout=API_TIMEOUT_S, allow_redirects=False,
                                         **kwargs)
            except requests.Timeout as exc:
                raise SluiceUnreachableError(
                    f"{self.base_url} did not answer {method} {path} within {API_TIMEOUT_S} s") from exc
            except requests.RequestException as exc:
                raise SluiceUnreachableError(self._unreachable(exc)) from exc
            if resp.status_code != 429:
                break
            resp.close()
            self.sleep(retry_after_seconds(resp.headers.get("Retry-After")))
        if resp.status_code >= 400:
            raise SluiceApiError(resp.status_code, _error_message(resp, from_api=True), method, path)
        return resp

    def _unreachable(self, exc: Exception) -> str:
        host = urlsplit(self.base_url).hostname or ""
        hint = ("is `make run` running?" if host in ("127.0.0.1", "localhost", "::1")
                else "check --url or SLUICE_API_URL")
        return f"cannot reach {self.base_url} — {hint} ({_reason(exc)})"


def _session(transport: BaseAdapter | None) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = "sluice-cli"
    if transport is not None:
        session.mount("http://", transport)
        session.mount("https://", transport)
    return session


def retry_after_seconds(header: str | None, now: datetime | None = None) -> float:
    """How long a 429's Retry-After asks to wait (seconds or an HTTP date),
    within [0.5, 60] s; 1 s when it is missing or unreadable."""
    seconds = 1.0
    if header:
        try:
            seconds = float(header)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(header)
                seconds = (when - (now or datetime.now(UTC))).total_seconds()
            except (TypeError, ValueError):
                pass
    return min(max(seconds, 0.5), LONGEST_THROTTLE_WAIT_S)


# What the API's authorizer answers, said so that the caller knows what to do.
_KEY_PROBLEMS = {401: "no API key was sent: pass --api-key or set SLUICE_API_KEY (`make run` prints one)",
                 403: "the API refused the key: it is wrong, revoked or expired"}


def _error_message(resp: requests.Response, from_api: bool = False) -> str:
    """The API's "error" (API Gateway says "message"; S3 answers XML); for
    the API's 401 and 403, what to do about the key."""
    if from_api and resp.status_code in _KEY_PROBLEMS:
        return _KEY_PROBLEMS[resp.status_code]
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error", "message", "Message"):
            if body.get(key):
                return str(body[key])
    text = resp.text
    if "<Message>" in text:
        return text.split("<Message>", 1)[1].split("</Message>", 1)[0]
    return _snippet(resp) or resp.reason or "no message"


def _snippet(resp: requests.Response, limit: int = 200) -> str:
    text = " ".join(resp.text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _reason(exc: Exception) -> str:
    # requests nests the cause several levels deep; the OS's words say what happened.
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if errno:
        return errno.group(1).strip()
    return text[-120:] or type(exc).__name__


def _without_query(url: str) -> str:
    # Presigned query strings carry signatures: not for error messages.
    return url.split("?", 1)[0]


__all__ = [
    "DEFAULT_API_URL", "SluiceApiError", "SluiceClient", "SluiceClientError", "SluiceUnreachableError",
    "retry_after_seconds",
]
