"""What the Chalice app listens to, read from the app object as `chalice deploy` reads it.

The decorators (@app.on_s3_event, @app.on_sqs_message, @app.on_dynamodb_record,
@app.schedule) record an event source config on ``app.event_sources`` and the wrapped handler in
``app.handler_map`` under the same name; the WebSocket ones (@app.on_ws_connect,
on_ws_message, on_ws_disconnect) record theirs on ``app.websocket_handlers``, keyed
by API Gateway route key. The result is plain, picklable data: it is
computed in a worker process (the only place the app is imported for the pump)
and sent back to the pump.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalice import app as chalice_app
from chalice.config import Config
from chalice.constants import DEFAULT_LAMBDA_MEMORY_SIZE, DEFAULT_LAMBDA_TIMEOUT


@dataclass(frozen=True)
class SqsSource:
    handler: str
    queue: str
    batch_size: int
    batching_window_s: int = 0
    max_concurrency: int | None = None

    def describe(self) -> str:
        return f"sqs {self.queue} (batch {self.batch_size})"


@dataclass(frozen=True)
class S3Source:
    handler: str
    bucket: str
    events: tuple[str, ...]
    prefix: str | None = None
    suffix: str | None = None

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix or ''}*{self.suffix or ''}"
        return f"{where} {','.join(self.events)}"


@dataclass(frozen=True)
class StreamSource:
    handler: str
    stream_arn: str
    batch_size: int
    starting_position: str = "LATEST"

    def describe(self) -> str:
        return f"dynamodb stream {self.stream_arn} (batch {self.batch_size})"


@dataclass(frozen=True)
class ScheduleSource:
    """An EventBridge schedule: ``rate(...)`` expressions only, as seconds."""

    handler: str
    expression: str
    interval_s: float

    def describe(self) -> str:
        return f"schedule {self.expression}"


EventSource = SqsSource | S3Source | StreamSource | ScheduleSource

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """Seconds between runs of an EventBridge rate expression; None for
    anything else (cron expressions are not run locally)."""
    match = _RATE.match(expression.strip())
    if not match:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


@dataclass(frozen=True)
class WebsocketRoutes:
    """The handler API Gateway's WebSocket API calls for each route, None when the app has none."""

    connect: str | None = None
    message: str | None = None
    disconnect: str | None = None

    def handlers(self) -> dict[str, str]:
        """Handler name by the function name Chalice deploys it under."""
        named = {"websocket_connect": self.connect, "websocket_message": self.message,
                 "websocket_disconnect": self.disconnect}
        return {function: handler for function, handler in named.items() if handler}


@dataclass(frozen=True)
class FunctionSettings:
    """What Lambda would give the handler: its deployed name, timeout and memory."""

    function_name: str
    timeout_s: int = DEFAULT_LAMBDA_TIMEOUT
    memory_mb: int = DEFAULT_LAMBDA_MEMORY_SIZE


@dataclass(frozen=True)
class AppDescription:
    app_name: str
    sources: tuple[EventSource, ...]
    functions: dict[str, FunctionSettings]
    # Event sources local_cloud does not run (SNS, Kinesis, schedules...), said once at start.
    not_run: tuple[str, ...] = field(default_factory=tuple)
    websocket: WebsocketRoutes = field(default_factory=WebsocketRoutes)


def load_chalice_config(app_dir: Path) -> dict[str, Any]:
    path = Path(app_dir) / ".chalice" / "config.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def chalice_environment(config_from_disk: dict[str, Any], chalice_stage: str) -> dict[str, str]:
    """The environment_variables .chalice/config.json gives every function of the stage."""
    config = Config(chalice_stage=chalice_stage, config_from_disk=config_from_disk)
    return {k: str(v) for k, v in config.environment_variables.items()}


def describe_app(
    app: chalice_app.Chalice, config_from_disk: dict[str, Any], chalice_stage: str, local_stage: str
) -> AppDescription:
    """Read the event sources and per-function settings off a loaded Chalice app."""
    sources: list[EventSource] = []
    not_run: list[str] = []
    for config in app.event_sources:
        if isinstance(config, chalice_app.SQSEventConfig):
            queue = config.queue or (config.queue_arn or "").rsplit(":", 1)[-1]
            sources.append(
                SqsSource(
                    handler=config.name,
                    queue=queue,
                    batch_size=config.batch_size,
                    batching_window_s=config.maximum_batching_window_in_seconds or 0,
                    max_concurrency=config.maximum_concurrency,
                )
            )
        elif isinstance(config, chalice_app.S3EventConfig):
            sources.append(
                S3Source(
                    handler=config.name,
                    bucket=config.bucket,
                    events=tuple(config.events),
                    prefix=config.prefix or None,
                    suffix=config.suffix or None,
                )
            )
        elif isinstance(config, chalice_app.ScheduledEventConfig):
            expression = config.schedule_expression
            if not isinstance(expression, str):
                expression = expression.to_string()
            interval = rate_seconds(expression)
            if interval is None:
                not_run.append(f"{config.name} ({expression}: only rate schedules run locally)")
            else:
                sources.append(ScheduleSource(config.name, expression, interval))
        elif isinstance(config, chalice_app.DynamoDBEventConfig):
            sources.append(
                StreamSource(
                    handler=config.name,
                    stream_arn=config.stream_arn,
                    batch_size=config.batch_size,
                    starting_position=config.starting_position,
                )
            )
        else:
            not_run.append(f"{config.name} ({type(config).__name__})")

    websocket = websocket_routes(app)
    # Chalice names each deployed function <app>-<stage>-<function> and reads its
    # lambda_functions settings under <function>: the handler's own name for event
    # sources, websocket_connect/_message/_disconnect for the WebSocket handlers.
    deployed = {s.handler: s.handler for s in sources}
    deployed.update({handler: function for function, handler in websocket.handlers().items()})
    functions = {}
    for handler, function in deployed.items():
        scoped = Config(
            chalice_stage=chalice_stage,
            function_name=function,
            config_from_disk=config_from_disk,
        )
        functions[handler] = FunctionSettings(
            function_name=f"{app.app_name}-{local_stage}-{function}",
            timeout_s=scoped.lambda_timeout or DEFAULT_LAMBDA_TIMEOUT,
            memory_mb=scoped.lambda_memory_size or DEFAULT_LAMBDA_MEMORY_SIZE,
        )
    return AppDescription(
        app_name=app.app_name, sources=tuple(sources), functions=functions, not_run=tuple(not_run),
        websocket=websocket,
    )


def websocket_routes(app: chalice_app.Chalice) -> WebsocketRoutes:
    by_route = {route: config.name for route, config in app.websocket_handlers.items()}
    connect, disconnect = by_route.pop("$connect", None), by_route.pop("$disconnect", None)
    # Chalice deploys one message function, for whichever route key it was given
    # ($default unless on_ws_message(route_key=...) said otherwise).
    message = by_route.pop("$default", None) or next(iter(by_route.values()), None)
    return WebsocketRoutes(connect=connect, message=message, disconnect=disconnect)
