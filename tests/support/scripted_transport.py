"""A requests transport that answers from a script instead of the network,
for clients that take one (`sluice.SluiceClient(transport=...)`).

Each "METHOD url" is given its answers, returned in turn (the last again once
the others are used up); an exception as an answer is raised, as the network
would. Every request is kept, body included, for the test to read.
"""
from __future__ import annotations

import http
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3 import HTTPResponse


@dataclass
class Answer:
    status: int
    body: bytes | dict | list = b""  # a dict or list is sent as JSON
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SentRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class ScriptedTransport(HTTPAdapter):
    def __init__(self, script: Mapping[str, Answer | Exception | list[Answer | Exception]]):
        super().__init__()
        self._script = {key: list(value) if isinstance(value, list) else [value]
                        for key, value in script.items()}
        self.sent: list[SentRequest] = []

    def send(self, request: Any, stream: bool = False, timeout: Any = None, verify: Any = True,
             cert: Any = None, proxies: Any = None) -> Any:
        self.sent.append(SentRequest(request.method, request.url, dict(request.headers),
                                     _body_bytes(request.body)))
        key = f"{request.method} {request.url}"
        if key not in self._script:
            raise AssertionError(f"nothing scripted for {key}; scripted: {sorted(self._script)}")
        answers = self._script[key]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        body, headers = answer.body, dict(answer.headers)
        if isinstance(body, dict | list):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        raw = HTTPResponse(body=io.BytesIO(body), headers=headers, status=answer.status,
                           reason=http.HTTPStatus(answer.status).phrase, preload_content=False)
        return self.build_response(request, raw)

    def sent_to(self, prefix: str) -> list[SentRequest]:
        return [req for req in self.sent if req.url.startswith(prefix)]


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytes):
        return body
    return b"".join(body)  # a streamed body, read as the network would
