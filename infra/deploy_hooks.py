"""Steps the deploy runs after `chalice deploy`, for what Chalice does not set.

Chalice 1.34 creates SQS event source mappings without
FunctionResponseTypes=["ReportBatchItemFailures"]. Without it Lambda ignores
the `batchItemFailures` a handler returns (chalicelib/events.py) and treats a
batch as all or nothing: one bad message sends its batch mates round again.
`enable_partial_batch_responses` turns it on for every SQS mapping of the
app's functions; it changes nothing that is already on, so a deploy may run
it every time.

Chalice 1.34 cannot set a function's ephemeral storage either, and the
aggregator needs more than Lambda's 512 MB of /tmp: openpyxl's write-only
mode keeps each sheet's XML in temporary files until it saves, about 0.8 GB
for a million-row report. `set_ephemeral_storage` sets it; Chalice's later
deploys leave it as it is (they update named settings only).

    lambda_client = boto3.client("lambda")
    enable_partial_batch_responses(lambda_client, sqs_function_names(app, "dev"))
    set_ephemeral_storage(lambda_client, {"sluice-dev-handle_aggregate_message": 2048})

infra/deploy.py runs both after every `chalice deploy`.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from chalice import app as chalice_app

REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
# Chalice function name -> MB of /tmp it needs (Lambda: 512 to 10,240).
EPHEMERAL_STORAGE_MB = {"handle_aggregate_message": 2048}
LAMBDA_DEFAULT_EPHEMERAL_MB = 512
# A mapping in one of these states refuses updates (ResourceInUseException):
# Chalice has just created or updated it.
_MAPPING_IN_TRANSITION = {"Creating", "Updating", "Enabling", "Disabling"}


def sqs_function_names(app: chalice_app.Chalice, stage: str) -> list[str]:
    """The deployed names (<app>-<stage>-<handler>) of the app's SQS handlers."""
    return [f"{app.app_name}-{stage}-{source.name}" for source in app.event_sources
            if isinstance(source, chalice_app.SQSEventConfig)]


def enable_partial_batch_responses(lambda_client: Any, function_names: Iterable[str],
                                   settle_timeout_s: float = 300, poll_s: float = 2) -> list[str]:
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
            _wait_until_settled(lambda_client, mapping, settle_timeout_s, poll_s)
            lambda_client.update_event_source_mapping(
                UUID=mapping["UUID"], FunctionResponseTypes=[*types, REPORT_BATCH_ITEM_FAILURES])
            changed.append(mapping["UUID"])
    return changed


def set_ephemeral_storage(lambda_client: Any, sizes_mb: Mapping[str, int]) -> list[str]:
    """Give each function (by its deployed name) that many MB of /tmp; changes
    nothing already so sized; returns the names of the functions it changed."""
    changed = []
    for function, size in sizes_mb.items():
        current = lambda_client.get_function_configuration(FunctionName=function)
        if current.get("EphemeralStorage", {}).get("Size", LAMBDA_DEFAULT_EPHEMERAL_MB) == size:
            continue
        # Chalice's own update of the function may still be in progress.
        lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function)
        lambda_client.update_function_configuration(FunctionName=function, EphemeralStorage={"Size": size})
        changed.append(function)
    return changed


def _mappings(lambda_client: Any, function: str) -> Iterable[dict[str, Any]]:
    paginator = lambda_client.get_paginator("list_event_source_mappings")
    for page in paginator.paginate(FunctionName=function):
        yield from page.get("EventSourceMappings", [])


def _wait_until_settled(lambda_client: Any, mapping: dict[str, Any], timeout_s: float, poll_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    state = mapping.get("State")
    while state in _MAPPING_IN_TRANSITION:
        if time.monotonic() > deadline:
            raise TimeoutError(f"event source mapping {mapping['UUID']} is still {state} "
                               f"after {timeout_s:.0f} s")
        time.sleep(poll_s)
        state = lambda_client.get_event_source_mapping(UUID=mapping["UUID"])["State"]
