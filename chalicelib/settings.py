"""Names and limits, read once from the environment.

Every resource name has a default that matches infra/template.yaml's local
stage, so tests and `chalice local` work without any configuration.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from None


def _authorizer_ttl() -> int:
    ttl = _int("SLUICE_AUTHORIZER_TTL_SECONDS", 300)
    if not 0 <= ttl <= 3600:
        raise ValueError(f"SLUICE_AUTHORIZER_TTL_SECONDS must be from 0 to 3600 (API Gateway's range), "
                         f"got {ttl}")
    return ttl


@dataclass(frozen=True)
class QueueConsumer:
    """How Lambda feeds one SQS handler: messages per invocation, and the most
    invocations at once (None: as many as Lambda scales to, within the
    account's concurrency). A stage sets them with SLUICE_<NAME>_BATCH_SIZE and
    SLUICE_<NAME>_MAX_CONCURRENCY; app.py hands them to @app.on_sqs_message,
    and Chalice to the event source mapping."""

    batch_size: int
    max_concurrency: int | None

    @classmethod
    def from_env(cls, name: str, batch_size: int) -> QueueConsumer:
        batch = _int(f"SLUICE_{name}_BATCH_SIZE", batch_size)
        # Above 10 SQS requires a batching window, which Sluice does not set;
        # the whole batch must also finish within the function's timeout.
        if not 1 <= batch <= 10:
            raise ValueError(f"SLUICE_{name}_BATCH_SIZE must be from 1 to 10, got {batch}")
        cap = _int(f"SLUICE_{name}_MAX_CONCURRENCY", 0)
        # An SQS event source's MaximumConcurrency is 2 to 1000; 0 or empty: no cap.
        if cap and not 2 <= cap <= 1000:
            raise ValueError(f"SLUICE_{name}_MAX_CONCURRENCY must be from 2 to 1000, or 0 for no cap; "
                             f"got {cap}")
        return cls(batch_size=batch, max_concurrency=cap or None)


@dataclass(frozen=True)
class Settings:
    bucket: str
    table: str
    work_queue: str
    aggregate_queue: str
    results_queue: str
    callback_queue: str
    callback_dlq: str
    # The jobs table's stream, which announces final statuses. Chalice needs
    # an ARN when it reads app.py; the placeholder serves tests and `chalice
    # local`, local_cloud and deploys set the real one.
    table_stream_arn: str
    # HMAC key of callback signatures. local_cloud sets a development key; a
    # deployed stage must set its own (a job asking for a callback is refused
    # while it is empty).
    callback_secret: str
    # Callbacks to loopback and private addresses: allowed in local runs only,
    # so a deployed Sluice cannot be pointed at its own network (SSRF).
    callback_allow_private: bool
    # Status and result queries per client per window (seed 000 throttling).
    status_queries_per_window: int
    status_window_seconds: int
    # The external factor service (options.factor_source = "api") and the
    # rate all workers share when calling it.
    factor_api_url: str
    # Where carbon jobs take factors unless they say: "table" (bundled) or "api".
    factor_source: str
    # The WebSocket API's management endpoint (https://<api>.execute-api.<region>
    # .amazonaws.com/<stage>; local_cloud sets its gateway). Empty: no live pushes.
    ws_endpoint: str
    # The URL WebSocket clients connect to (wss://<api>.execute-api.<region>
    # .amazonaws.com/<stage>; ws://127.0.0.1:8001 under local_cloud). The
    # dashboard and the CLI learn it from the app; empty: they poll instead.
    ws_url: str
    # PROGRESS messages per job per second, however many chunks finish.
    live_progress_per_second: int
    factor_api_rate_per_second: int
    # The API Gateway/Lambda request limit is 6 MB; bigger files go through POST /uploads.
    api_max_body_bytes: int
    # Presigned POST size range.
    upload_max_bytes: int
    # A CSV chunk is about this many bytes: large enough that AWS calls stay well
    # under a few hundred per million rows, small enough for a 512 MB Lambda.
    chunk_bytes: int
    # Excel and re-encoded text are rewritten into chunk files of this many rows.
    chunk_rows: int
    job_ttl_days: int
    presign_seconds: int
    # The pages processor's OCR engine: "tesseract" (local runs and tests) or
    # "textract" (a deployed stage, DetectDocumentText per page).
    ocr_engine: str
    # A page with more pixels than this is refused before it is decoded (a
    # page bomb): 150 megapixels is an A0 sheet at 300 dpi.
    max_page_pixels: int
    # -- failure handling (infra/template.yaml and .chalice/config.json hold the
    # same figures; tests/unit/test_failure_settings.py keeps them together) --
    # The dead-letter queues of the work and aggregate queues, which the app
    # listens to: a message there has used up its deliveries.
    work_dlq: str
    aggregate_dlq: str
    # The work and aggregate queues' maxReceiveCount.
    queue_max_receives: int
    # The work queue's visibility timeout: how long a delivery may take before
    # the message is delivered again.
    work_visibility_s: int
    # The dispatcher's and the aggregator's Lambda timeouts.
    dispatch_timeout_s: int
    aggregate_timeout_s: int
    # How often the sweeper re-sends a stalled job's pending chunks before it
    # fails them as lost.
    sweep_resends: int
    # -- controlled concurrency (seed 003): batch size and maximum concurrency of
    # each SQS handler, from the stage's configuration (SLUICE_WORK_*,
    # SLUICE_AGGREGATE_*, SLUICE_CALLBACK_*, SLUICE_DEAD_LETTER_* for both DLQ
    # handlers). A batch of chunks runs one after another in one invocation.
    work_consumer: QueueConsumer
    aggregate_consumer: QueueConsumer
    callback_consumer: QueueConsumer
    dead_letter_consumer: QueueConsumer
    # Days files live under work/ (a failed job can be retried one day less),
    # uploads/ and results/ (S3 lifecycle rules, from the stack's parameters).
    work_files_days: int
    upload_files_days: int
    result_files_days: int
    # The tenant of files dropped into uploads/ without a `tenant` metadata
    # (local_cloud: the tenant of the key it prints).
    default_tenant: str
    # How long an issued API key lives.
    api_key_days: int
    # How long API Gateway keeps the authorizer's answer for a key: a revoked
    # key keeps working on REST routes this long (0: every call is checked,
    # one more DynamoDB read each). API Gateway allows 0 to 3600.
    authorizer_ttl_seconds: int
    # -- observability (chalicelib/observability) --
    # The Stage dimension of every metric (a deployed stage sets its name).
    stage: str
    # The level of the JSON logs on Lambda and in local_cloud's workers.
    log_level: str
    # X-Ray: "auto" traces on Lambda when the function's tracing is active,
    # "off" never, "on" wherever a daemon listens.
    xray: str
    # Local runs only: a file every metric line is also appended to, which
    # GET /metrics reads. Empty on AWS, where CloudWatch holds the figures.
    metrics_file: str

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            bucket=os.environ.get("SLUICE_BUCKET", "sluice-local-data"),
            table=os.environ.get("SLUICE_TABLE", "sluice-local-jobs"),
            work_queue=os.environ.get("SLUICE_WORK_QUEUE", "sluice-local-work"),
            aggregate_queue=os.environ.get("SLUICE_AGGREGATE_QUEUE", "sluice-local-aggregate"),
            results_queue=os.environ.get("SLUICE_RESULTS_QUEUE", "sluice-local-results"),
            callback_queue=os.environ.get("SLUICE_CALLBACK_QUEUE", "sluice-local-callbacks"),
            callback_dlq=os.environ.get("SLUICE_CALLBACK_DLQ", "sluice-local-callbacks-dlq"),
            table_stream_arn=os.environ.get(
                "SLUICE_TABLE_STREAM_ARN",
                "arn:aws:dynamodb:us-east-1:123456789012:table/sluice-local-jobs/stream/local"),
            callback_secret=os.environ.get("SLUICE_CALLBACK_SECRET", ""),
            callback_allow_private=os.environ.get("SLUICE_CALLBACK_ALLOW_PRIVATE", "") == "1",
            status_queries_per_window=_int("SLUICE_STATUS_QUERIES_PER_WINDOW", 120),
            status_window_seconds=_int("SLUICE_STATUS_WINDOW_SECONDS", 60),
            factor_api_url=os.environ.get("SLUICE_FACTOR_API_URL", ""),
            factor_source=os.environ.get("SLUICE_FACTOR_SOURCE", "table"),
            ws_endpoint=os.environ.get("SLUICE_WS_ENDPOINT", ""),
            ws_url=os.environ.get("SLUICE_WS_URL", ""),
            live_progress_per_second=_int("SLUICE_LIVE_PROGRESS_PER_SECOND", 4),
            factor_api_rate_per_second=_int("SLUICE_FACTOR_API_RATE_PER_SECOND", 10),
            api_max_body_bytes=_int("SLUICE_API_MAX_BODY_BYTES", 5 * 1024 * 1024),
            upload_max_bytes=_int("SLUICE_UPLOAD_MAX_BYTES", 5 * 1024**3),
            chunk_bytes=_int("SLUICE_CHUNK_BYTES", 8 * 1024 * 1024),
            chunk_rows=_int("SLUICE_CHUNK_ROWS", 100_000),
            job_ttl_days=_int("SLUICE_JOB_TTL_DAYS", 14),
            presign_seconds=_int("SLUICE_PRESIGN_SECONDS", 3600),
            ocr_engine=os.environ.get("SLUICE_OCR_ENGINE", "tesseract"),
            max_page_pixels=_int("SLUICE_MAX_PAGE_PIXELS", 150_000_000),
            work_dlq=os.environ.get("SLUICE_WORK_DLQ", "sluice-local-work-dlq"),
            aggregate_dlq=os.environ.get("SLUICE_AGGREGATE_DLQ", "sluice-local-aggregate-dlq"),
            queue_max_receives=_int("SLUICE_QUEUE_MAX_RECEIVES", 5),
            work_visibility_s=_int("SLUICE_WORK_VISIBILITY_S", 360),
            dispatch_timeout_s=_int("SLUICE_DISPATCH_TIMEOUT_S", 900),
            aggregate_timeout_s=_int("SLUICE_AGGREGATE_TIMEOUT_S", 900),
            sweep_resends=_int("SLUICE_SWEEP_RESENDS", 2),
            work_consumer=QueueConsumer.from_env("WORK", batch_size=1),
            aggregate_consumer=QueueConsumer.from_env("AGGREGATE", batch_size=1),
            callback_consumer=QueueConsumer.from_env("CALLBACK", batch_size=1),
            dead_letter_consumer=QueueConsumer.from_env("DEAD_LETTER", batch_size=10),
            work_files_days=_int("SLUICE_WORK_FILES_DAYS", 7),
            upload_files_days=_int("SLUICE_UPLOAD_FILES_DAYS", 14),
            result_files_days=_int("SLUICE_RESULT_FILES_DAYS", 14),
            default_tenant=os.environ.get("SLUICE_DEFAULT_TENANT", "default"),
            api_key_days=_int("SLUICE_API_KEY_DAYS", 365),
            authorizer_ttl_seconds=_authorizer_ttl(),
            stage=os.environ.get("SLUICE_STAGE") or "local",
            log_level=(os.environ.get("SLUICE_LOG_LEVEL") or "INFO").upper(),
            xray=(os.environ.get("SLUICE_XRAY") or "auto").lower(),
            metrics_file=os.environ.get("SLUICE_METRICS_FILE", ""),
        )


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
