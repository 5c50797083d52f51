"""local_cloud runs the app's schedules: how it reads them off the app, and the
event EventBridge would send."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from chalice import Chalice, Cron, Rate

import app as sluice_app
from local_cloud import events
from local_cloud.sources import ScheduleSource, describe_app, rate_seconds


@pytest.mark.parametrize("expression, seconds", [
    ("rate(5 minutes)", 300), ("rate(1 minute)", 60), ("rate(2 hours)", 7200), ("rate(1 day)", 86400),
    ("cron(0 12 * * ? *)", None), ("rate(five minutes)", None),
])
def test_rate_expressions_become_intervals(expression, seconds):
    assert rate_seconds(expression) == seconds


def test_schedules_are_read_off_the_app_and_cron_ones_are_said_not_to_run():
    app = Chalice(app_name="timed")

    @app.schedule(Rate(5, unit=Rate.MINUTES))
    def every_five(event):
        pass

    @app.schedule("rate(1 hour)")
    def hourly(event):
        pass

    @app.schedule(Cron(0, 12, "*", "*", "?", "*"))
    def at_noon(event):
        pass

    description = describe_app(app, {}, chalice_stage="dev", local_stage="local")
    assert description.sources == (ScheduleSource("every_five", "rate(5 minutes)", 300),
                                   ScheduleSource("hourly", "rate(1 hour)", 3600))
    assert description.not_run == ("at_noon (cron(0 12 * * ? *): only rate schedules run locally)",)
    assert description.functions["every_five"].function_name == "timed-local-every_five"


def test_sluices_sweeper_and_dead_letter_handlers_are_run_locally():
    description = describe_app(sluice_app.app, {}, chalice_stage="dev", local_stage="local")
    handlers = {s.handler: s for s in description.sources}
    assert handlers["handle_sweep_timer"] == ScheduleSource("handle_sweep_timer", "rate(5 minutes)", 300)
    assert handlers["handle_work_dead_letter"].batch_size == 10
    assert handlers["handle_aggregate_dead_letter"].batch_size == 10
    assert description.not_run == ()


def test_a_scheduled_event_is_shaped_as_eventbridges():
    arn = "arn:aws:events:us-east-1:123456789012:rule/sluice-local-handle_sweep_timer"
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = events.scheduled_event(arn, "us-east-1", "123456789012", at)
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["time"] == "2026-01-02T03:04:05Z" and event["resources"] == [arn]
    assert event["detail"] == {} and event["id"] != events.scheduled_event(arn, "r", "a")["id"]
    # Chalice's own event class reads it, as the handler's `event`.
    from chalice.app import CloudWatchEvent
    assert CloudWatchEvent(event, None).detail_type == "Scheduled Event"
