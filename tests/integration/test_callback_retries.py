"""What follows a callback attempt, against a real receiver on 127.0.0.1:
delivered, re-queued with a growing delay, or parked in the DLQ; never an
exception that would fail anything else."""
from __future__ import annotations

import pytest

from chalicelib.jobs.model import Job, JobStatus
from chalicelib.notify.callbacks import MAX_ATTEMPTS, SIGNATURE_HEADER, verify
from chalicelib.notify.delivery import deliver_callback
from chalicelib.notify.final_status import announce_final_statuses
from tests.support.callback_receiver import CallbackReceiver
from tests.support.memory_pipeline import memory_pipeline

SECRET = "test-secret"


@pytest.fixture
def pipe():
    return memory_pipeline(callback_secret=SECRET, callback_allow_private=True)


def _first_message(pipe, url: str) -> dict:
    job = Job(job_id="j1", processor="profile", filename="a.csv", source_key="k",
              status=JobStatus.COMPLETED, callback_url=url, totals={"rows": 3})
    announce_final_statuses(pipe, [("aggregating", job)])
    [message] = pipe.callback_queue.drain()
    return message


def _redeliver_until_settled(pipe, message: dict) -> list[str]:
    """Run the message and every re-queued follow-up, as the queue would."""
    outcomes = [deliver_callback(pipe, message)]
    while pipe.callback_queue.messages:
        outcomes.append(deliver_callback(pipe, pipe.callback_queue.messages.pop(0)))
    return outcomes


def test_a_failing_receiver_is_retried_with_growing_delays_then_succeeds(pipe):
    with CallbackReceiver() as receiver:
        receiver.answer_first(3, 500)
        message = _first_message(pipe, receiver.url + "/hook")
        assert _redeliver_until_settled(pipe, message) == ["retrying"] * 3 + ["delivered"]
        calls = receiver.wait_for(4)
    delays = pipe.callback_queue.delays
    assert len(delays) == 3 and delays == sorted(delays) and delays[0] >= 1
    assert all(verify(SECRET.encode(), c.body, c.headers[SIGNATURE_HEADER.lower()]) for c in calls)
    assert pipe.callback_dlq.messages == []


def test_a_receiver_that_never_recovers_lands_in_the_dlq_with_every_error(pipe):
    with CallbackReceiver(default_status=503) as receiver:
        message = _first_message(pipe, receiver.url + "/hook")
        outcomes = _redeliver_until_settled(pipe, message)
    assert outcomes == ["retrying"] * (MAX_ATTEMPTS - 1) + ["dead"]
    [dead] = pipe.callback_dlq.messages
    assert dead["attempt"] == MAX_ATTEMPTS
    assert len(dead["errors"]) == MAX_ATTEMPTS and "503" in dead["errors"][-1]
    assert dead["notice"]["job_id"] == "j1"
    assert max(pipe.callback_queue.delays) <= 900  # SQS's longest delay


def test_a_gone_receiver_is_not_retried(pipe):
    with CallbackReceiver(default_status=410) as receiver:
        message = _first_message(pipe, receiver.url + "/hook")
        assert _redeliver_until_settled(pipe, message) == ["dead"]
    assert "410" in pipe.callback_dlq.messages[0]["errors"][0]


def test_nobody_listening_is_retried(pipe):
    with CallbackReceiver() as receiver:
        url = receiver.url
    message = _first_message(pipe, url + "/hook")  # the receiver has stopped
    assert deliver_callback(pipe, message) == "retrying"


def test_jobs_refuse_callbacks_when_no_secret_is_configured():
    from chalicelib.jobs.dispatch import new_job
    from chalicelib.jobs.model import InputError

    pipe = memory_pipeline(callback_secret="")
    with pytest.raises(InputError, match="SLUICE_CALLBACK_SECRET"):
        new_job(pipe, "a.csv", "profile", {}, callback_url="http://127.0.0.1:9/hook")


def test_private_callback_addresses_are_refused_unless_allowed():
    from chalicelib.jobs.dispatch import new_job
    from chalicelib.jobs.model import InputError

    pipe = memory_pipeline(callback_secret="s", callback_allow_private=False)
    for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "ftp://example.com/x"):
        with pytest.raises(InputError):
            new_job(pipe, "a.csv", "profile", {}, callback_url=url)


def test_an_address_that_turned_private_is_not_called(pipe):
    message = _first_message(pipe, "http://127.0.0.1:9/hook")
    strict = memory_pipeline(callback_secret=SECRET, callback_allow_private=False)
    assert deliver_callback(strict, message) == "dead"
    assert "127.0.0.1" in strict.callback_dlq.messages[0]["errors"][0]
