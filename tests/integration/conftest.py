"""moto in-process, with the resources deployed from infra/template.yaml
exactly as local_cloud deploys them."""
from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
from moto import mock_aws

from chalicelib import aws, wiring
from chalicelib.settings import Settings, get_settings
from local_cloud import moto_fixes
from local_cloud.aws_server import AwsClients, EmbeddedAws, client_environment
from local_cloud.stack import deploy_stack


@dataclasses.dataclass
class MotoStack:
    settings: Settings
    outputs: dict[str, str]

    def client(self, service: str) -> Any:
        return aws.client(service)


@pytest.fixture
def moto_stack(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    wiring.reset()
    # The moto local runs use: the store's transactions are proved against it.
    moto_fixes.apply()
    with mock_aws():
        outputs = deploy_stack(aws.client, stage="test")
        for name, value in outputs.app_environment().items():
            monkeypatch.setenv(name, value)
        wiring.reset()
        yield MotoStack(settings=get_settings(), outputs=outputs.values)
    wiring.reset()


@pytest.fixture
def small_chunks(monkeypatch):
    """Make every file split into many chunks."""
    def apply(chunk_bytes: int = 64, chunk_rows: int = 3):
        monkeypatch.setenv("SLUICE_CHUNK_BYTES", str(chunk_bytes))
        monkeypatch.setenv("SLUICE_CHUNK_ROWS", str(chunk_rows))
        wiring.reset()
        return dataclasses.replace(get_settings())
    return apply


@pytest.fixture(scope="module")
def embedded_stack():
    """moto's real server, as local_cloud runs it (its middleware makes
    concurrent DynamoDB writes atomic, as DynamoDB's are), with the stack
    deployed under a stage of its own: (clients, outputs)."""
    server = EmbeddedAws(port=0)
    clients = AwsClients(server.start())
    try:
        yield clients, deploy_stack(clients, stage=f"t{uuid.uuid4().hex[:8]}")
    finally:
        server.stop()


@pytest.fixture
def embedded_environment(embedded_stack, monkeypatch):
    """embedded_stack, with this process's AWS clients (chalicelib.aws) aimed
    at it, as an operator's shell with AWS_ENDPOINT_URL set would be."""
    clients, outputs = embedded_stack
    for name, value in client_environment(clients.endpoint_url).items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    yield clients, outputs
    wiring.reset()
