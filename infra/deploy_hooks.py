"""Steps the deploy runs after `chalice deploy`, for what Chalice does not set.

Chalice 1.34 creates SQS event source mappings without
FunctionResponseTypes=["ReportBatchItemFailures"]. Without it Lambda ignores
the `batchItemFailures` a handler returns (chalicelib/events.py) and treats a
batch as all or nothing: one bad message sends its batch mates round again.
`enable_partial_batch_responses` turns it on for every SQS mapping of the
app's functions; it changes nothing that is already on, so a deploy may run
it every time.

    lambda_client = boto3.client("lambda")
    enable_partial_batch_responses(lambda_client, sqs_function_names(app, "dev"))
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chalice import app as chalice_app

REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"


def sqs_function_names(app: chalice_app.Chalice, stage: str) -> list[str]:
    """The deployed names (<app>-<stage>-<handler>) of the app's SQS handlers."""
    return [f"{app.app_name}-{stage}-{source.name}" for source in app.event_sources
            if isinstance(source, chalice_app.SQSEventConfig)]


def enable_partial_batch_responses(lambda_client: Any, function_names: Iterable[str]) -> list[str]:
    """Turn ReportBatchItemFailures on for each SQS event source mapping of
    `function_names`; returns the UUIDs of the mappings it changed."""
    changed = []
    for function in function_names:
        for mapping in _mappings(lambda_client, function):
            if ":sqs:" not in mapping["EventSourceArn"]:
                continue  # streams report failures their own way
            types = list(mapping.get("FunctionResponseTypes") or [])
            if REPORT_BATCH_ITEM_FAILURES in types:
                continue
            lambda_client.update_event_source_mapping(
                UUID=mapping["UUID"], FunctionResponseTypes=[*types, REPORT_BATCH_ITEM_FAILURES])
            changed.append(mapping["UUID"])
    return changed


def _mappings(lambda_client: Any, function: str) -> Iterable[dict[str, Any]]:
    paginator = lambda_client.get_paginator("list_event_source_mappings")
    for page in paginator.paginate(FunctionName=function):
        yield from page.get("EventSourceMappings", [])
