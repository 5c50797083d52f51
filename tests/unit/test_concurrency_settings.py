"""Controlled concurrency (seed 003): each SQS handler's batch size and maximum
concurrency come from the stage's configuration, through the settings, to the
event sources Chalice deploys and local_cloud's pump runs."""
from __future__ import annotations

import pytest
from chalice import app as chalice_app

from chalicelib.settings import QueueConsumer
from local_cloud.sources import SqsSource, chalice_environment, describe_app, load_chalice_config
from tests.support.fresh_app import ROOT, load_app

# SQS handler -> the SLUICE_<NAME>_ prefix of its two settings.
CONSUMERS = {
    "handle_work_message": "WORK",
    "handle_aggregate_message": "AGGREGATE",
    "handle_callback_message": "CALLBACK",
    "handle_work_dead_letter": "DEAD_LETTER",
    "handle_aggregate_dead_letter": "DEAD_LETTER",
}


def _sqs_sources(app: chalice_app.Chalice) -> dict[str, tuple[int, int | None]]:
    return {s.name: (s.batch_size, s.maximum_concurrency) for s in app.event_sources
            if isinstance(s, chalice_app.SQSEventConfig)}


def test_every_sqs_handler_has_its_settings():
    assert set(_sqs_sources(load_app({}))) == set(CONSUMERS)


def test_without_settings_one_chunk_per_invocation_and_no_cap():
    assert _sqs_sources(load_app({})) == {
        "handle_work_message": (1, None),
        "handle_aggregate_message": (1, None),
        "handle_callback_message": (1, None),
        "handle_work_dead_letter": (10, None),
        "handle_aggregate_dead_letter": (10, None),
    }


def test_the_stage_environment_sets_each_handlers_batch_and_cap():
    environ = {"SLUICE_WORK_BATCH_SIZE": "2", "SLUICE_WORK_MAX_CONCURRENCY": "120",
               "SLUICE_AGGREGATE_MAX_CONCURRENCY": "3", "SLUICE_CALLBACK_MAX_CONCURRENCY": "4",
               "SLUICE_DEAD_LETTER_BATCH_SIZE": "5", "SLUICE_DEAD_LETTER_MAX_CONCURRENCY": "2"}
    assert _sqs_sources(load_app(environ)) == {
        "handle_work_message": (2, 120),
        "handle_aggregate_message": (1, 3),
        "handle_callback_message": (1, 4),
        "handle_work_dead_letter": (5, 2),
        "handle_aggregate_dead_letter": (5, 2),
    }


@pytest.mark.parametrize("name, value, words", [
    ("SLUICE_WORK_BATCH_SIZE", "0", "from 1 to 10"),
    ("SLUICE_WORK_BATCH_SIZE", "11", "from 1 to 10"),
    ("SLUICE_CALLBACK_MAX_CONCURRENCY", "1", "from 2 to 1000"),
    ("SLUICE_AGGREGATE_MAX_CONCURRENCY", "1001", "from 2 to 1000"),
    ("SLUICE_WORK_MAX_CONCURRENCY", "many", "must be an integer"),
])
def test_values_sqs_would_refuse_are_refused_when_the_app_is_read(monkeypatch, name, value, words):
    # Chalice imports app.py before it deploys anything: a bad value stops the deploy there.
    monkeypatch.setenv(name, value)
    prefix = name.removeprefix("SLUICE_").rsplit("_", 2)[0]
    with pytest.raises(ValueError, match=words):
        QueueConsumer.from_env(prefix, batch_size=1)


def test_zero_or_empty_means_no_cap(monkeypatch):
    monkeypatch.setenv("SLUICE_WORK_MAX_CONCURRENCY", "0")
    assert QueueConsumer.from_env("WORK", batch_size=1) == QueueConsumer(batch_size=1, max_concurrency=None)
    monkeypatch.setenv("SLUICE_WORK_MAX_CONCURRENCY", "")
    assert QueueConsumer.from_env("WORK", batch_size=1).max_concurrency is None


def test_the_dev_stage_caps_every_sqs_handler_and_local_cloud_runs_the_same_caps():
    config = load_chalice_config(ROOT)
    environment = chalice_environment(config, "dev")
    app = load_app(environment)
    for handler, (batch, cap) in _sqs_sources(app).items():
        prefix = CONSUMERS[handler]
        assert batch == int(environment[f"SLUICE_{prefix}_BATCH_SIZE"])
        assert cap == int(environment[f"SLUICE_{prefix}_MAX_CONCURRENCY"]), handler
    # The pump reads the same event sources: its concurrency per queue is the cap.
    sources = describe_app(app, config, "dev", "local").sources
    pumped = {s.handler: s for s in sources if isinstance(s, SqsSource)}
    assert pumped["handle_work_message"].max_concurrency == int(environment["SLUICE_WORK_MAX_CONCURRENCY"])
    assert pumped["handle_work_dead_letter"].batch_size == int(environment["SLUICE_DEAD_LETTER_BATCH_SIZE"])


# -- the authorizer's cache: how long a revoked key keeps working on REST routes ----------

def _authorizer_ttl(app: chalice_app.Chalice) -> int:
    [authorizer] = app.builtin_auth_handlers
    return authorizer.ttl_seconds


def test_the_authorizer_caches_for_five_minutes_unless_the_stage_says_otherwise():
    assert _authorizer_ttl(load_app({})) == 300
    assert _authorizer_ttl(load_app({"SLUICE_AUTHORIZER_TTL_SECONDS": "0"})) == 0
    assert _authorizer_ttl(load_app({"SLUICE_AUTHORIZER_TTL_SECONDS": "60"})) == 60


@pytest.mark.parametrize("value", ["-1", "3601", "five"])
def test_a_ttl_api_gateway_would_refuse_is_refused_when_the_app_is_read(value):
    with pytest.raises(ValueError, match="SLUICE_AUTHORIZER_TTL_SECONDS"):
        load_app({"SLUICE_AUTHORIZER_TTL_SECONDS": value})
