"""The embedded AWS: moto's own server, in this process, on 127.0.0.1.

One HTTP endpoint serves every service (S3, SQS, DynamoDB and its streams,
CloudFormation), so the app, its worker processes and a developer's aws CLI all
see the same state through AWS_ENDPOINT_URL, with no Docker and no account.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import urllib.request
from collections.abc import MutableMapping
from typing import Any

import boto3
from botocore.config import Config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from local_cloud import moto_fixes
from local_cloud.aws_middleware import AwsMiddleware, CallLedger

REGION = "us-east-1"
# moto accepts any credentials; fixed dummy ones keep real ones out of the picture.
ACCESS_KEY = "local"
SECRET_KEY = "local"

_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    s3={"addressing_style": "path"},
    # Long polls (SQS WaitTimeSeconds) must finish before the read times out.
    read_timeout=30,
)


class MotoServer(ThreadedMotoServer):
    """moto's threaded server with local_cloud's middleware in front."""

    def __init__(self, middleware: AwsMiddleware, **kwargs: Any):
        super().__init__(**kwargs)
        self._middleware = middleware

    def _server_entry(self) -> None:
        self._middleware.wrap(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, self._middleware, True)
        self._server_ready_event.set()
        self._server.serve_forever()


class AwsPortInUseError(RuntimeError):
    """Another process already listens on the port asked for."""


def client_environment(endpoint_url: str) -> dict[str, str]:
    """What a process needs in its environment to talk to the embedded AWS."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }


def apply_environment(env: dict[str, str], environ: MutableMapping[str, str] = os.environ) -> None:
    """Set ``env`` and drop what would send boto3 elsewhere or with real credentials.

    A developer's session token, profile or per-service endpoint
    (AWS_ENDPOINT_URL_S3...) would otherwise win over the embedded AWS.
    """
    for name in list(environ):
        if name in _UNSET or name.startswith("AWS_ENDPOINT_URL_"):
            del environ[name]
    environ.update(env)


_UNSET = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")


class AwsClients:
    """boto3 clients aimed at one endpoint, built once per service and thread-safe."""

    def __init__(self, endpoint_url: str, access_key: str = ACCESS_KEY):
        self.endpoint_url = endpoint_url
        # The access key names the caller in the call ledger (aws_middleware).
        self._session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=SECRET_KEY, region_name=REGION
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        # boto3 clients are thread-safe once built; building them is not.
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service, endpoint_url=self.endpoint_url, config=_CLIENT_CONFIG
                )
            return self._clients[service]


class EmbeddedAws:
    """moto.server.ThreadedMotoServer bound to loopback, with start/stop and its URL."""

    def __init__(self, port: int = 4566, host: str = "127.0.0.1"):
        self._host = host
        self._port = port
        self._server = None
        self.middleware = AwsMiddleware()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("EmbeddedAws is not started")
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def start(self) -> str:
        if self._port:
            # ThreadedMotoServer.start() waits forever if its thread fails to bind.
            _ensure_free(self._host, self._port)
        # Every SQS poll would otherwise print a request line.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        moto_fixes.apply()
        self._server = MotoServer(self.middleware, ip_address=self._host, port=self._port,
                                   verbose=False)
        self._server.start()
        return self.url

    @property
    def ledger(self) -> CallLedger:
        return self.middleware.ledger

    def stop(self) -> None:
        """Stop serving and forget every resource.

        moto keeps its state in module globals of this process, not in the server:
        without the reset, a second EmbeddedAws in the same process (tests, a
        benchmark after an e2e run) would find the previous stack still there.
        """
        if self._server is None:
            return
        try:
            reset = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
            urllib.request.urlopen(reset, timeout=10).close()
        except OSError as exc:
            logging.getLogger("local_cloud").warning("could not reset the embedded AWS: %s", exc)
        self._server.stop()
        self._server = None


def _ensure_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise AwsPortInUseError(
                f"cannot serve the embedded AWS on {host}:{port} ({exc.strerror}); "
                "pass --aws-port to pick another port"
            ) from None
