"""Seed 000's throttling of status queries: a per-client counter in DynamoDB
(moto here), 429 with Retry-After above the limit, other clients unaffected."""
from __future__ import annotations

import pytest
from chalice.test import Client

from app import app
from chalicelib import wiring
from tests.support.authed import api_key_for

LIMIT = 5


@pytest.fixture
def client(moto_stack, monkeypatch):
    _KEYS.clear()
    # A window far longer than the test, so all requests fall in one window.
    monkeypatch.setenv("SLUICE_STATUS_QUERIES_PER_WINDOW", str(LIMIT))
    monkeypatch.setenv("SLUICE_STATUS_WINDOW_SECONDS", "3600")
    wiring.reset()
    with Client(app) as c:
        yield c
    wiring.reset()


_KEYS: dict[str, str] = {}


def _key(name: str) -> str:
    """One API key per named client (each counted apart), made on first use."""
    if name not in _KEYS:
        _KEYS[name] = api_key_for()
    return _KEYS[name]


def _get(client, path: str, name: str):
    return client.http.get(path, headers={"Authorization": f"Bearer {_key(name)}"})


def test_a_client_above_its_limit_gets_429_with_retry_after(client):
    answers = [_get(client, "/jobs/no-such-job", "client-a").status_code for _ in range(LIMIT)]
    assert answers == [404] * LIMIT  # counted, and answered normally
    over = _get(client, "/jobs/no-such-job", "client-a")
    assert over.status_code == 429
    retry_after = int(over.headers["Retry-After"])
    assert 1 <= retry_after <= 3600
    assert over.json_body["retry_after"] == retry_after
    assert f"at most {LIMIT}" in over.json_body["error"]
    # Every throttled route shares the client's count.
    for path in ("/jobs", "/jobs/x/result", "/jobs/x/report", "/jobs/x/rows"):
        assert _get(client, path, "client-a").status_code == 429


def test_clients_are_counted_apart(client):
    for _ in range(LIMIT):
        _get(client, "/jobs", "client-b")
    assert _get(client, "/jobs", "client-b").status_code == 429
    assert _get(client, "/jobs", "client-c").status_code == 200


def test_uploads_are_not_throttled(client):
    for _ in range(LIMIT + 2):
        _get(client, "/jobs", "client-d")
    headers = {"Content-Type": "text/csv", "Authorization": f"Bearer {_key('client-d')}"}
    resp = client.http.post("/jobs?processor=profile&filename=a.csv", headers=headers, body=b"a,b\n1,2\n")
    assert resp.status_code == 202


def test_the_counter_lives_in_the_jobs_table(client, moto_stack):
    _get(client, "/jobs", "client-e")
    items = moto_stack.client("dynamodb").scan(TableName=moto_stack.settings.table)["Items"]
    counters = [i for i in items if i["PK"]["S"].startswith("RATE#status#key-")]
    assert counters and all("expires_at" in i for i in counters)
    assert _key("client-e") not in str(counters)  # counted by the key's id, never the key
