"""LocalCloud: the whole event-driven app on one machine, startable in-process.

Start order matters: the embedded AWS first, then the stack (its Outputs name the
resources), then the environment the app reads, then the workers, the WebSocket
gateway and the pump, and the API last, so every request it accepts already has
handlers behind it. The gateway binds its port before the workers start: their
environment, fixed when they spawn, names it (SLUICE_WS_ENDPOINT), and it needs
the workers to run its handlers.
``python -m local_cloud`` is a thin CLI around this class; e2e tests and the
benchmarks use it directly.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from chalicelib.adapters.dynamodb_keys import DynamoApiKeyStore
from chalicelib.auth import issue_key
from infra.stack_environment import DEPLOYED_VARIABLES
from local_cloud.api_server import ApiServer
from local_cloud.aws_server import AwsClients, EmbeddedAws, apply_environment, client_environment
from local_cloud.lambda_pool import LambdaPool
from local_cloud.pump import EventPump, PumpSettings
from local_cloud.sources import AppDescription, chalice_environment, load_chalice_config
from local_cloud.stack import StackOutputs, deploy_stack
from local_cloud.ws_gateway import WebSocketGateway

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_LINE = "Sluice local cloud ready"
PUMP_ACCESS_KEY = "local-pump"
LAMBDA_ACCESS_KEY = "local-lambda"
# Settings a local run needs that a deployed stage sets for itself: a known
# callback key (so a developer can verify signatures) and callbacks to
# 127.0.0.1 allowed (a deployed stage refuses private addresses).
LOCAL_DEFAULTS = {
    "SLUICE_CALLBACK_SECRET": "sluice-local-callback-secret",
    "SLUICE_CALLBACK_ALLOW_PRIVATE": "1",
    # Files dropped into uploads/ belong to the tenant of the printed key.
    "SLUICE_DEFAULT_TENANT": "local",
}
LOCAL_TENANT = "local"

log = logging.getLogger("local_cloud")

# Runs the app's schedules this many times faster (tests of the sweeper: 300
# makes its five-minute schedule fire every second).
SCHEDULE_SPEEDUP_ENV = "LOCAL_CLOUD_SCHEDULE_SPEEDUP"


def pump_settings_from_env() -> PumpSettings:
    return PumpSettings(schedule_speedup=float(os.environ.get(SCHEDULE_SPEEDUP_ENV) or 1))


class LocalCloud:
    """Embedded AWS + the stack + event pump + WebSocket gateway + REST API.

    ``start()`` sets AWS_ENDPOINT_URL, dummy credentials and the SLUICE_* names in
    this process's environment (the in-process API needs them) and ``stop()``
    puts the previous values back. Code that built boto3 clients or read settings
    before ``start()`` must rebuild them (chalicelib.aws.reset_clients()).
    """

    def __init__(
        self,
        app_dir: Path | str = REPO_ROOT,
        aws_port: int = 4566,
        api_port: int = 8000,
        ws_port: int = 8001,
        stage: str = "local",
        workers: int = 2,
        chalice_stage: str = "dev",
        serve_api: bool = True,
        serve_ws: bool = True,
        pump_settings: PumpSettings | None = None,
        log_level: int = logging.INFO,
    ):
        self.app_dir = Path(app_dir).resolve()
        self.stage = stage
        self._aws = EmbeddedAws(port=aws_port)
        self._api = ApiServer(self.app_dir, port=api_port, chalice_stage=chalice_stage) if serve_api else None
        self._ws = WebSocketGateway(port=ws_port, stage=stage) if serve_ws else None
        self._workers = workers
        self._chalice_stage = chalice_stage
        self._pump_settings = pump_settings
        self._log_level = log_level
        self._pool: LambdaPool | None = None
        self._pump: EventPump | None = None
        self._saved_environ: dict[str, str | None] = {}
        self._metrics_dir: str | None = None
        self.aws_url: str | None = None
        self.api_url: str | None = None
        #: a key of the local tenant, made at start
        self.api_key: str | None = None
        self.ws_url: str | None = None
        self.outputs: StackOutputs | None = None
        self.clients: AwsClients | None = None

    @property
    def description(self) -> AppDescription | None:
        return self._pool.description if self._pool else None

    def start(self) -> LocalCloud:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.aws_url = self._aws.start()
        log.info("embedded AWS on %s", self.aws_url)
        self.clients = AwsClients(self.aws_url)
        self._set_environment(client_environment(self.aws_url))
        self.outputs = deploy_stack(self.clients, self.stage)
        log.info("stack %s deployed", self.outputs.stack_name)
        self._set_environment(self.outputs.app_environment())
        # Every worker appends its metric lines (EMF, as printed) to one file; GET /metrics reads it.
        # Set before the stage's configuration, which names a deployed stage.
        self._metrics_dir = tempfile.mkdtemp(prefix="sluice-metrics-")
        self._set_environment({k: v for k, v in {
            "SLUICE_STAGE": self.stage,
            "SLUICE_METRICS_FILE": os.path.join(self._metrics_dir, "metrics.jsonl")}.items()
            if k not in os.environ})
        # .chalice/config.json gives defaults; the shell and local_cloud win over it. What
        # `make deploy` wrote there names the deployed stage's resources, never the local ones.
        config_env = {k: v for k, v in chalice_environment(load_chalice_config(self.app_dir),
                                                           self._chalice_stage).items()
                      if k not in DEPLOYED_VARIABLES}
        self._set_environment({k: v for k, v in {**LOCAL_DEFAULTS, **config_env}.items()
                               if k not in os.environ})
        self.api_key = self._issue_local_key()
        ws_environment = {}
        if self._ws is not None:
            self._ws.bind()
            ws_environment = self._ws.environment()
            self._set_environment(ws_environment)

        self._pool = LambdaPool(
            self.app_dir,
            # Handlers sign with their own access key, so the call ledger can tell
            # the work a job causes from API requests and the pump's polling.
            environment={**client_environment(self.aws_url), "AWS_ACCESS_KEY_ID": LAMBDA_ACCESS_KEY,
                         **self.outputs.app_environment(), **ws_environment},
            workers=self._workers,
            chalice_stage=self._chalice_stage,
            local_stage=self.stage,
            log_level=self._log_level,
        )
        self._pool.start()
        if self._ws is not None:
            self.ws_url = self._ws.start(self._pool)
            log.info("WebSocket gateway on %s", self.ws_url)
        # The pump polls with its own access key, so the call ledger tells its
        # polling apart from the app's own calls.
        pump_clients = AwsClients(self.aws_url, access_key=PUMP_ACCESS_KEY)
        self._pump = EventPump(self._pool, pump_clients, self.stage,
                               self._pump_settings or pump_settings_from_env())
        self._pump.start()
        if self._api is not None:
            self.api_url = self._api.start()
            log.info("API on %s", self.api_url)

    def stop(self) -> None:
        """Stop API, WebSocket gateway, pump, workers and AWS, in that order; safe to call twice."""
        if self._api is not None:
            self._api.stop()
        if self._ws is not None:
            # Before the workers: closing connections runs their $disconnect handler.
            self._ws.stop()
        if self._pump is not None:
            self._pump.stop()
            self._pump = None
        if self._pool is not None:
            self._pool.stop()
            self._pool = None
        self._aws.stop()
        if self._metrics_dir is not None:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
            self._metrics_dir = None
        self._restore_environment()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _issue_local_key(self) -> str:
        """A key for the local tenant, new each run (the embedded AWS starts empty)."""
        store = DynamoApiKeyStore(self.clients("dynamodb"), self.outputs.values["TableName"])
        key, _ = issue_key(store, LOCAL_TENANT, "make run", int(time.time()), days=1)
        return key

    def banner(self) -> str:
        """What a developer needs to start using it, ready to paste."""
        outputs = self.outputs.values if self.outputs else {}
        ws = (f"{self.ws_url} (@connections on {self.ws_url.replace('ws://', 'http://', 1)})"
              if self.ws_url else "(not served)")
        lines = [
            f"Sluice local cloud (stage {self.stage}, app {self.app_dir / 'app.py'})",
            f"  API           {self.api_url or '(not served)'}",
            *([f"  Dashboard     {self.api_url}/#key={self.api_key}"] if self.api_url else []),
            f"  WebSocket     {ws}",
            f"  Embedded AWS  {self.aws_url}",
            f"                export AWS_ENDPOINT_URL={self.aws_url} AWS_ACCESS_KEY_ID=local "
            "AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1",
            f"  Bucket        {outputs.get('BucketName')}",
            f"  Table         {outputs.get('TableName')}",
            f"  Queues        {outputs.get('WorkQueueName')}, {outputs.get('AggregateQueueName')}"
            f" (DLQs {outputs.get('WorkDLQName')}, {outputs.get('AggregateDLQName')})",
            f"  Results       {outputs.get('ResultsQueueName')} (one message per finished job); "
            f"callbacks {outputs.get('CallbackQueueName')} (DLQ {outputs.get('CallbackDLQName')}), "
            f"signed with SLUICE_CALLBACK_SECRET={os.environ.get('SLUICE_CALLBACK_SECRET', '')}",
            f"  Workers       {self._workers} processes",
        ]
        description = self.description
        if description and (description.sources or self.ws_url):
            routes = description.websocket
            listened = [(s.handler, s.describe()) for s in description.sources]
            if self.ws_url:
                listened += [(handler, f"websocket {route}") for route, handler in
                             (("$connect", routes.connect), ("$default", routes.message),
                              ("$disconnect", routes.disconnect)) if handler]
            lines.append("  Event sources")
            lines += [f"    {handler} <- {what}, timeout {description.functions[handler].timeout_s} s"
                      for handler, what in listened]
        if self.api_url:
            auth = '-H "Authorization: Bearer $SLUICE_API_KEY"'
            lines += [
                "",
                f"API key: {self.api_key}",
                "",
                "Try:",
                f"  export SLUICE_API_KEY={self.api_key} SLUICE_API_URL={self.api_url}",
                f"  curl {auth} -X POST --data-binary @examples/sales.csv -H 'Content-Type: text/csv' "
                f"'{self.api_url}/jobs?processor=profile&filename=sales.csv'",
                f"  curl {auth} -X POST --data-binary @examples/activities.csv -H 'Content-Type: text/csv' "
                f"'{self.api_url}/jobs?processor=carbon&filename=activities.csv'",
                f"  curl {auth} {self.api_url}/jobs/<job_id>",
                f"  curl {auth} {self.api_url}/jobs/<job_id>/result",
                f"  curl {auth} -L -o report.xlsx {self.api_url}/jobs/<job_id>/report",
                "  .venv/bin/python -m bench.make_documents 50 drawings.zip",
                "  .venv/bin/python -m sluice submit drawings.zip --processor scan "
                "--option target_hole_codes=HOLE-1,HOLE-2,HOLE-3,HOLE-4,HOLE-5 --wait",
            ]
            if self.ws_url:
                # A one-time ticket (POST /live/tickets) opens the socket: the key stays out of URLs.
                ticket_url = (f"curl -s -X POST {auth} {self.api_url}/live/tickets"
                              " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"url\"])'")
                lines.append(f'  .venv/bin/python -m websockets "$({ticket_url})"   then send '
                             '{"action": "subscribe", "job_id": "<job_id>"}')
        return "\n".join(lines)

    def _set_environment(self, values: dict[str, str]) -> None:
        for name in list(os.environ) + list(values):
            if name not in self._saved_environ and (
                name in values or name.startswith("AWS_")
            ):
                self._saved_environ[name] = os.environ.get(name)
        apply_environment(values)

    def _restore_environment(self) -> None:
        for name, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environ = {}
