"""The deploy's own steps, against a Lambda that behaves as AWS's does where
moto does not: a mapping Chalice has just created or updated refuses updates
for a while, and a function's ephemeral storage can be changed. And reading
Chalice's record of a deploy into the stage's WebSocket variables."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.deploy import ChaliceDeployment, _parser, deployed_path, main
from infra.deploy_hooks import (
    REPORT_BATCH_ITEM_FAILURES,
    enable_partial_batch_responses,
    set_ephemeral_storage,
)


class ResourceInUseError(Exception):
    pass


class FakeLambda:
    """Event source mappings that pass through `states` before they settle,
    and functions with their ephemeral storage."""

    def __init__(self, states: list[str] | None = None, storage: dict[str, int] | None = None):
        self._states = list(states or [])
        self.mapping = {"UUID": "m-1", "FunctionArn": "arn:aws:lambda:us-east-1:1:function:f",
                        "EventSourceArn": "arn:aws:sqs:us-east-1:1:q", "State": self._next_state()}
        self.storage = dict(storage or {})

    def _next_state(self) -> str:
        return self._states.pop(0) if self._states else "Enabled"

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_event_source_mappings"
        return self

    def paginate(self, FunctionName: str) -> list[dict[str, Any]]:  # noqa: N803 - boto3's name
        return [{"EventSourceMappings": [dict(self.mapping)] if FunctionName == "f" else []}]

    def get_event_source_mapping(self, UUID: str) -> dict[str, Any]:  # noqa: N803
        self.mapping["State"] = self._next_state()
        return dict(self.mapping)

    def update_event_source_mapping(self, UUID: str, FunctionResponseTypes: list[str]) -> None:  # noqa: N803
        if self.mapping["State"] != "Enabled":
            raise ResourceInUseError(f"mapping is {self.mapping['State']}")
        self.mapping["FunctionResponseTypes"] = FunctionResponseTypes

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:  # noqa: N803
        return {"FunctionName": FunctionName, "EphemeralStorage": {"Size": self.storage[FunctionName]}}

    def get_waiter(self, name: str) -> Any:
        assert name == "function_updated_v2"
        return self

    def wait(self, **_: Any) -> None:
        pass

    def update_function_configuration(self, FunctionName: str, EphemeralStorage: dict[str, int]) -> None:  # noqa: N803
        self.storage[FunctionName] = EphemeralStorage["Size"]


def test_a_mapping_chalice_is_still_creating_is_changed_once_it_settles():
    lam = FakeLambda(states=["Creating", "Creating", "Updating"])
    assert enable_partial_batch_responses(lam, ["f"], poll_s=0) == ["m-1"]
    assert lam.mapping["FunctionResponseTypes"] == [REPORT_BATCH_ITEM_FAILURES]


def test_a_mapping_that_never_settles_stops_the_deploy_with_its_state():
    lam = FakeLambda(states=["Creating"] * 1000)
    with pytest.raises(TimeoutError, match="still Creating"):
        enable_partial_batch_responses(lam, ["f"], settle_timeout_s=0.05, poll_s=0.01)


def test_the_aggregator_gets_its_tmp_once():
    aggregator, worker = "sluice-dev-handle_aggregate_message", "sluice-dev-handle_work_message"
    lam = FakeLambda(storage={aggregator: 512, worker: 512})
    wanted = {aggregator: 2048}
    assert set_ephemeral_storage(lam, wanted) == [aggregator]
    assert lam.storage == {aggregator: 2048, worker: 512}
    assert set_ephemeral_storage(lam, wanted) == []  # a second deploy changes nothing


def test_chalices_record_gives_the_urls_functions_and_sqs_consumers(tmp_path):
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:"
    record = {"schema_version": "2.0", "backend": "api", "resources": [
        {"name": "default-role", "resource_type": "iam_role", "role_arn": "arn:aws:iam::1:role/sluice-dev",
         "role_name": "sluice-dev"},
        {"name": "handle_work_message", "resource_type": "lambda_function",
         "lambda_arn": f"{arn}sluice-dev-handle_work_message"},
        {"name": "handle_work_message-sqs-event-source", "resource_type": "sqs_event",
         "queue_arn": "arn:aws:sqs:eu-west-1:123456789012:sluice-dev-work", "event_uuid": "u-1",
         "queue": "sluice-dev-work", "lambda_arn": f"{arn}sluice-dev-handle_work_message"},
        {"name": "api_handler", "resource_type": "lambda_function", "lambda_arn": f"{arn}sluice-dev"},
        {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": "abc123",
         "rest_api_url": "https://abc123.execute-api.eu-west-1.amazonaws.com/api/"},
        {"name": "websocket_api", "resource_type": "websocket_api", "websocket_api_id": "def456",
         "websocket_api_url": "wss://def456.execute-api.eu-west-1.amazonaws.com/api/"},
    ]}
    path = deployed_path(tmp_path, "dev")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))

    deployment = ChaliceDeployment.read(tmp_path, "dev")
    assert deployment.rest_api_url == "https://abc123.execute-api.eu-west-1.amazonaws.com/api/"
    assert deployment.functions == {"handle_work_message": "sluice-dev-handle_work_message",
                                    "api_handler": "sluice-dev"}
    assert deployment.sqs_function_names == ("sluice-dev-handle_work_message",)
    # The app posts to connections at https://, clients connect at wss://; no trailing slash.
    assert deployment.websocket_environment() == {
        "SLUICE_WS_URL": "wss://def456.execute-api.eu-west-1.amazonaws.com/api",
        "SLUICE_WS_ENDPOINT": "https://def456.execute-api.eu-west-1.amazonaws.com/api",
    }


# -- the command line make deploy and make destroy run ------------------------------------

def _make_command(*args: str) -> list[str]:
    """What make would run for `make <args>` (its install prerequisite taken as done)."""
    root = Path(__file__).resolve().parents[2]
    shown = subprocess.run(["make", "--no-print-directory", "-n", "-o", "install", *args], cwd=root,
                           capture_output=True, text=True, check=True).stdout.strip().splitlines()
    assert len(shown) == 1, shown
    command = shlex.split(shown[0])
    assert command[1:3] == ["-m", "infra.deploy"], command
    return command[3:]


def test_make_deploy_and_destroy_pass_the_stage_region_and_alert_address():
    deploy_args = _parser().parse_args(_make_command(
        "deploy", "STAGE=prod", "REGION=eu-west-1", "ALERT_EMAIL=ops@example.com"))
    assert (deploy_args.action, deploy_args.stage, deploy_args.region, deploy_args.alert_email) == (
        "deploy", "prod", "eu-west-1", "ops@example.com")
    destroy_args = _parser().parse_args(_make_command("destroy", "STAGE=prod"))
    assert (destroy_args.action, destroy_args.stage, destroy_args.region) == ("destroy", "prod", None)
    assert _parser().parse_args(_make_command("deploy")).stage == "dev"


@pytest.fixture
def no_aws_credentials(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_without_credentials_or_a_region_the_deploy_says_so_and_touches_nothing(no_aws_credentials, capsys,
                                                                               tmp_path):
    assert main(["deploy", "--stage", "dev", "--project-dir", str(tmp_path)]) == 2
    assert "no AWS region" in capsys.readouterr().err
    assert main(["deploy", "--stage", "dev", "--region", "eu-west-1", "--project-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("deploy failed:") and "credentials" in err
    assert list(tmp_path.iterdir()) == []
