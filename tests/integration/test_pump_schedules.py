"""The pump runs an app's schedules: a tiny app with a one-minute schedule,
sped up sixty times, is invoked every second with EventBridge's event, in
the pool's worker processes, and a failing run is retried as Lambda retries
asynchronous invocations."""
from __future__ import annotations

import json
import logging
import time

import pytest

from local_cloud.aws_server import AwsClients, EmbeddedAws, client_environment
from local_cloud.lambda_pool import LambdaPool
from local_cloud.pump import EventPump, PumpSettings

TIMED_APP = '''
import json
import os
import uuid
from pathlib import Path

from chalice import Chalice, Rate

app = Chalice(app_name="timed")
JOURNAL = Path(os.environ["SCHEDULE_TEST_JOURNAL"])


@app.schedule(Rate(1, unit=Rate.MINUTES))
def every_minute(event):
    raw = event.to_dict()
    (JOURNAL / f"run-{uuid.uuid4().hex}.json").write_text(json.dumps(
        {"detail_type": event.detail_type, "source": event.source, "resources": event.resources,
         "time": raw["time"], "pid": os.getpid()}))
    if len(list(JOURNAL.glob("run-*.json"))) == 2:
        raise RuntimeError("the second run fails once")
'''


@pytest.fixture(scope="module")
def timed(tmp_path_factory):
    aws = EmbeddedAws(port=0)
    url = aws.start()
    app_dir = tmp_path_factory.mktemp("timed_app")
    (app_dir / "app.py").write_text(TIMED_APP)
    journal = tmp_path_factory.mktemp("runs")
    pool = LambdaPool(app_dir, {**client_environment(url), "SCHEDULE_TEST_JOURNAL": str(journal)},
                      workers=1, log_level=logging.WARNING)
    pump = EventPump(pool, AwsClients(url), stage="sched",
                     settings=PumpSettings(schedule_speedup=60, async_retry_delays_s=(0.1, 0.1)))
    try:
        pool.start()
        pump.start()
        yield journal
    finally:
        pump.stop()
        pool.stop()
        aws.stop()


def test_a_schedule_fires_at_its_sped_up_rate_with_eventbridges_event(timed):
    started = time.monotonic()
    deadline = started + 20
    while len(list(timed.glob("run-*.json"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    runs = [json.loads(p.read_text()) for p in timed.glob("run-*.json")]
    assert len(runs) >= 4
    # Once a second: the failed second run was retried at once (0.1 s), so four
    # runs take about three ticks, never four ticks' worth less than that.
    assert time.monotonic() - started >= 2.5
    assert {r["detail_type"] for r in runs} == {"Scheduled Event"}
    assert {r["source"] for r in runs} == {"aws.events"}
    assert {tuple(r["resources"]) for r in runs} == {
        ("arn:aws:events:us-east-1:123456789012:rule/timed-local-every_minute",)}
