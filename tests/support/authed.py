"""API keys for tests: one issued into the stack under test, and Chalice's
test client sending it with every request, as any caller of the API must."""
from __future__ import annotations

import time
from typing import Any

import requests

from chalicelib.auth import issue_key
from chalicelib.wiring import get_pipeline


def api_key_for(tenant: str | None = None) -> str:
    """A key for `tenant` (the stage's default tenant, which owns files
    dropped into uploads/, when none is named) in the current stack."""
    pipe = get_pipeline()
    key, _ = issue_key(pipe.keys, tenant or pipe.settings.default_tenant, "tests", int(time.time()), days=1)
    return key


class AuthedHttp:
    """chalice.test.Client.http with `Authorization: Bearer <key>` added."""

    def __init__(self, http: Any, key: str | None):
        self._http, self.key = http, key

    def request(self, method: str, path: str, headers: dict | None = None, body: bytes = b""):
        sent = dict(headers or {})
        if self.key is not None:
            sent.setdefault("Authorization", f"Bearer {self.key}")
        return self._http.request(method, path, headers=sent, body=body)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs):
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.request("DELETE", path, **kwargs)


class AuthedClient:
    """A chalice.test.Client whose `http` sends a tenant's key."""

    def __init__(self, client: Any, key: str | None):
        self._client = client
        self.http = AuthedHttp(client.http, key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class ApiSession(requests.Session):
    """A requests session that sends the API key to the API, and only there:
    presigned S3 links carry their own signature and refuse a second one."""

    def __init__(self, api_url: str, key: str | None):
        super().__init__()
        self.api_url, self.key = api_url.rstrip("/"), key

    def request(self, method: str, url: str, *args: Any, **kwargs: Any):
        if self.key and (url == self.api_url or url.startswith(self.api_url + "/")):
            kwargs["headers"] = {"Authorization": f"Bearer {self.key}", **(kwargs.get("headers") or {})}
        return super().request(method, url, *args, **kwargs)
