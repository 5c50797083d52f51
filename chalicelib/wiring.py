"""The pipeline built from AWS clients, once per process, on first use."""
from __future__ import annotations

import functools
import time

from . import aws
from .adapters import DynamoJobStore, S3BlobStore, SqsTaskQueue
from .adapters.apigw import ApiGatewaySender
from .adapters.dynamodb_connections import DynamoConnectionStore
from .adapters.dynamodb_factor_cache import DynamoFactorCache
from .adapters.dynamodb_keys import DynamoApiKeyStore, DynamoTicketStore
from .adapters.dynamodb_limits import DynamoWindowCounter
from .carbon.factor_api import HttpFactorLookup, RetryPolicy
from .jobs.pipeline import Pipeline
from .limits.limiter import RateLimiter
from .ocr import engine_for
from .settings import Settings, get_settings

FACTOR_API_RATE_KEY = "factor-api"
# A lookup must give up well inside the worker's 60 s timeout (the chunk is
# then retried by its queue): at worst 3 x (8 s for a token + 5 s) + backoff.
FACTOR_API_POLICY = RetryPolicy(attempts=3, base_s=0.5, cap_s=4, retry_after_cap_s=8,
                                timeout_s=5, max_wait_s=8)


@functools.lru_cache(maxsize=1)
def get_pipeline() -> Pipeline:
    settings = get_settings()
    sqs = aws.client("sqs")
    limits = DynamoWindowCounter(aws.client("dynamodb"), settings.table)
    return Pipeline(
        store=DynamoJobStore(aws.client("dynamodb"), settings.table),
        blobs=S3BlobStore(aws.client("s3"), settings.bucket),
        work_queue=SqsTaskQueue(sqs, settings.work_queue),
        aggregate_queue=SqsTaskQueue(sqs, settings.aggregate_queue),
        results_queue=SqsTaskQueue(sqs, settings.results_queue),
        callback_queue=SqsTaskQueue(sqs, settings.callback_queue),
        callback_dlq=SqsTaskQueue(sqs, settings.callback_dlq),
        limits=limits,
        connections=DynamoConnectionStore(aws.client("dynamodb"), settings.table),
        live=ApiGatewaySender(aws.websocket_management, settings.ws_endpoint),
        settings=settings,
        keys=DynamoApiKeyStore(aws.client("dynamodb"), settings.table),
        tickets=DynamoTicketStore(aws.client("dynamodb"), settings.table),
        services=_services(settings, limits),
    )


def _services(settings: Settings, limits: DynamoWindowCounter) -> dict:
    # The stage's OCR engine for page jobs: Tesseract locally, Textract on AWS.
    services = {"ocr": lambda job_id: engine_for(settings.ocr_engine, lambda: aws.client("textract"))}
    if not settings.factor_api_url:
        return services

    def factor_api(job_id: str) -> HttpFactorLookup:
        # One rate for every worker of every job: the limiter's counter lives
        # in DynamoDB. Answers are cached per job, in DynamoDB too, so chunks
        # on other Lambdas do not ask again.
        limiter = RateLimiter(limits, FACTOR_API_RATE_KEY, settings.factor_api_rate_per_second, 1)
        ttl = int(time.time()) + settings.job_ttl_days * 86400
        cache = DynamoFactorCache(aws.client("dynamodb"), settings.table, job_id, ttl)
        return HttpFactorLookup(settings.factor_api_url, limiter, cache, policy=FACTOR_API_POLICY)

    return {**services, "factor_api": factor_api}


def reset() -> None:
    """Forget the cached pipeline, settings and clients (tests change them)."""
    get_pipeline.cache_clear()
    get_settings.cache_clear()
    aws.reset_clients()
