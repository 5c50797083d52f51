"""boto3 clients, built lazily and once per process.

One endpoint override serves local runs: AWS_ENDPOINT_URL (boto3 reads it
natively too) points every client at the embedded AWS of local_cloud or at
any other emulator. Nothing here runs at import time.
"""
from __future__ import annotations

import functools
import os

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
# S3 presigned POST/GET URLs must name the endpoint the caller can reach, and
# be signed with SigV4. Only S3 gets the S3 signer: it leaves paths as they
# are, which other services (@connections/<id ending in "=">) sign encoded.
_S3_CONFIG = _CONFIG.merge(Config(s3={"addressing_style": "path"}, signature_version="s3v4"))


def endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL") or None


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@functools.cache
def client(service: str):
    return boto3.session.Session().client(
        service, region_name=region(), endpoint_url=endpoint_url(),
        config=_S3_CONFIG if service == "s3" else _CONFIG,
    )


@functools.cache
def websocket_management(endpoint: str):
    """The @connections client of one WebSocket API (its https URL and stage)."""
    return boto3.session.Session().client(
        "apigatewaymanagementapi", region_name=region(), endpoint_url=endpoint, config=_CONFIG
    )


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints between runs)."""
    client.cache_clear()
    websocket_management.cache_clear()
