"""Callbacks POSTed to a real receiver on 127.0.0.1
(tests/support/callback_receiver.py), verified with the recipe receivers are
given (chalicelib/notify/VERIFYING.md, run here as its text)."""
from __future__ import annotations

import json
import socket
import time

import pytest

from chalicelib.notify import EVENT_ID_HEADER, SIGNATURE_HEADER, deliver
from tests.support.callback_receiver import CallbackReceiver, recipe_verify

SECRET = b"whsec-delivery"
BODY = json.dumps({"job_id": "j-42", "status": "completed", "totals": {"rows": 3}}).encode()


@pytest.fixture
def receiver():
    with CallbackReceiver() as rx:
        yield rx


@pytest.fixture(scope="module")
def receiver_verify():
    """`verify` as a receiver defines it by pasting VERIFYING.md."""
    return recipe_verify()


def test_a_delivery_is_a_signed_json_post_the_receiver_can_verify(receiver, receiver_verify):
    result = deliver(receiver.url + "/hooks/sluice", BODY, SECRET, event_id="evt-1")
    assert (result.ok, result.status, result.error, result.retryable) == (True, 200, None, False)
    [got] = receiver.wait_for(1)
    assert (got.method, got.path, got.body) == ("POST", "/hooks/sluice", BODY)
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == "Sluice-Callback/1"
    assert got.headers[EVENT_ID_HEADER.lower()] == "evt-1"
    signature = got.headers[SIGNATURE_HEADER.lower()]
    assert receiver_verify(SECRET, got.body, signature)
    assert not receiver_verify(b"someone else's secret", got.body, signature)
    assert not receiver_verify(SECRET, got.body + b"\n", signature)
    assert not receiver_verify(SECRET, got.body, signature, now=time.time() + 3600)  # replayed later


def test_5xx_and_429_are_retryable_and_a_retry_keeps_its_event_id(receiver, receiver_verify):
    receiver.answer_first(2, 500)
    receiver.answer_first(1, 429)
    receiver.answer_first(1, 503)
    results = [deliver(receiver.url, BODY, SECRET, event_id="evt-2") for _ in range(5)]
    assert [(r.ok, r.status, r.retryable) for r in results] == [
        (False, 500, True), (False, 500, True), (False, 429, True), (False, 503, True), (True, 200, False)]
    assert results[0].error.startswith("HTTP 500")
    got = receiver.wait_for(5)
    assert {r.headers[EVENT_ID_HEADER.lower()] for r in got} == {"evt-2"}
    assert all(receiver_verify(SECRET, r.body, r.headers[SIGNATURE_HEADER.lower()]) for r in got)


@pytest.mark.parametrize("status", [400, 401, 404, 410, 301])
def test_other_answers_are_final(receiver, status):
    receiver.answer_first(1, status)
    result = deliver(receiver.url, BODY, SECRET, event_id="evt-3")
    assert (result.ok, result.status, result.retryable) == (False, status, False)
    assert f"HTTP {status}" in result.error
    assert len(receiver.wait_for(1)) == 1  # a redirect is not followed


def test_a_receiver_that_does_not_answer_in_time_is_retryable(receiver):
    receiver.hold_first(1)  # never answers until the receiver stops
    held = deliver(receiver.url, BODY, SECRET, event_id="evt-4", timeout_s=0.5)
    assert (held.ok, held.status, held.retryable) == (False, None, True)
    assert "Timeout" in held.error
    assert deliver(receiver.url, BODY, SECRET, event_id="evt-4").ok


def test_a_receiver_that_is_not_listening_is_retryable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = deliver(f"http://127.0.0.1:{port}/", BODY, SECRET, event_id="evt-5", timeout_s=5)
    assert (result.ok, result.status, result.retryable) == (False, None, True)
    assert result.error
