"""The pipeline built from AWS clients, once per process, on first use."""
from __future__ import annotations

import functools

from . import aws
from .adapters import DynamoJobStore, S3BlobStore, SqsTaskQueue
from .jobs.pipeline import Pipeline
from .settings import get_settings


@functools.lru_cache(maxsize=1)
def get_pipeline() -> Pipeline:
    settings = get_settings()
    return Pipeline(
        store=DynamoJobStore(aws.client("dynamodb"), settings.table),
        blobs=S3BlobStore(aws.client("s3"), settings.bucket),
        work_queue=SqsTaskQueue(aws.client("sqs"), settings.work_queue),
        aggregate_queue=SqsTaskQueue(aws.client("sqs"), settings.aggregate_queue),
        results_queue=SqsTaskQueue(aws.client("sqs"), settings.results_queue),
        callback_queue=SqsTaskQueue(aws.client("sqs"), settings.callback_queue),
        callback_dlq=SqsTaskQueue(aws.client("sqs"), settings.callback_dlq),
        settings=settings,
    )


def reset() -> None:
    """Forget the cached pipeline, settings and clients (tests change them)."""
    get_pipeline.cache_clear()
    get_settings.cache_clear()
    aws.reset_clients()
