"""Where the stack and a stage's environment meet, for the deploy script and local_cloud alike.

A stage's environment sets some of infra/template.yaml's Parameters (the same
variables the app reads), and the stack's Outputs become the SLUICE_* variables
chalicelib/settings.py reads. `python -m infra.deploy` writes them into the
Chalice stage's configuration; local_cloud sets them in its own processes.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

# Template parameter -> the stage variable that sets it. One that is not set
# keeps the template's default.
PARAMETERS_FROM_ENV = {
    "WorkFilesExpireDays": "SLUICE_WORK_FILES_DAYS",
    "UploadFilesExpireDays": "SLUICE_UPLOAD_FILES_DAYS",
    "ResultFilesExpireDays": "SLUICE_RESULT_FILES_DAYS",
}

# SLUICE_* variable -> the stack Output it is read from. The stream ARN and
# the DLQ names are for handlers that need them when app.py is imported.
OUTPUTS_TO_ENV = {
    "SLUICE_BUCKET": "BucketName",
    "SLUICE_TABLE": "TableName",
    "SLUICE_WORK_QUEUE": "WorkQueueName",
    "SLUICE_AGGREGATE_QUEUE": "AggregateQueueName",
    "SLUICE_TABLE_STREAM_ARN": "TableStreamArn",
    "SLUICE_RESULTS_QUEUE": "ResultsQueueName",
    "SLUICE_CALLBACK_QUEUE": "CallbackQueueName",
    "SLUICE_CALLBACK_DLQ": "CallbackDLQName",
    "SLUICE_WORK_DLQ": "WorkDLQName",
    "SLUICE_AGGREGATE_DLQ": "AggregateDLQName",
    "SLUICE_WORK_FILES_DAYS": "WorkFilesExpireDays",
    "SLUICE_UPLOAD_FILES_DAYS": "UploadFilesExpireDays",
    "SLUICE_RESULT_FILES_DAYS": "ResultFilesExpireDays",
}

# What a deploy writes into the stage's configuration besides the Outputs:
# the WebSocket API's URLs, known once Chalice has deployed it, and the
# stage's name, the Stage dimension of its metrics. A local run sets its own.
WS_VARIABLES = ("SLUICE_WS_ENDPOINT", "SLUICE_WS_URL")
STAGE_VARIABLE = "SLUICE_STAGE"
DEPLOYED_VARIABLES = (*OUTPUTS_TO_ENV, *WS_VARIABLES, STAGE_VARIABLE)


def stack_name_for(stage: str) -> str:
    return f"sluice-{stage}"


def stage_parameters(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The template parameters a stage's environment sets."""
    return {param: str(environ[name]) for param, name in PARAMETERS_FROM_ENV.items() if environ.get(name)}


def app_environment(outputs: Mapping[str, str]) -> dict[str, str]:
    """The SLUICE_* variables the app reads, from the stack's Outputs."""
    return {name: outputs[output] for name, output in OUTPUTS_TO_ENV.items()}
