"""What the Chalice app listens to, read from the app object as `chalice deploy` reads it.

The decorators (@app.on_s3_event, @app.on_sqs_message, @app.on_dynamodb_record)
record an event source config on ``app.event_sources`` and the wrapped handler in
``app.handler_map`` under the same name. The result is plain, picklable data: it is
computed in a worker process (the only place the app is imported for the pump)
and sent back to the pump.
"""
from __future__ import annotations

import json
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


EventSource = SqsSource | S3Source | StreamSource


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

    functions = {}
    for source in sources:
        scoped = Config(
            chalice_stage=chalice_stage,
            function_name=source.handler,
            config_from_disk=config_from_disk,
        )
        functions[source.handler] = FunctionSettings(
            # Chalice names each deployed function <app>-<stage>-<handler>.
            function_name=f"{app.app_name}-{local_stage}-{source.handler}",
            timeout_s=scoped.lambda_timeout or DEFAULT_LAMBDA_TIMEOUT,
            memory_mb=scoped.lambda_memory_size or DEFAULT_LAMBDA_MEMORY_SIZE,
        )
    return AppDescription(
        app_name=app.app_name, sources=tuple(sources), functions=functions, not_run=tuple(not_run)
    )
