"""infra/deploy_hooks.py against moto's Lambda: the SQS event source mappings
of the app's functions get ReportBatchItemFailures, once; a stream mapping
and another app's function are left as they are."""
from __future__ import annotations

import io
import json
import zipfile

from app import app
from chalicelib import aws
from infra.deploy_hooks import REPORT_BATCH_ITEM_FAILURES, enable_partial_batch_responses, sqs_function_names


def _function(lambda_client, name: str) -> None:
    role = aws.client("iam").create_role(
        RoleName=f"{name}-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    lambda_client.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="app.handler",
                                  Code={"ZipFile": code.getvalue()})


def _queue_arn(name: str) -> str:
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_the_apps_sqs_handlers_are_named_as_chalice_deploys_them():
    assert sqs_function_names(app, "dev") == [
        "sluice-dev-handle_work_message", "sluice-dev-handle_aggregate_message",
        "sluice-dev-handle_work_dead_letter", "sluice-dev-handle_aggregate_dead_letter",
        "sluice-dev-handle_callback_message",
    ]


def test_sqs_mappings_report_batch_item_failures_once(moto_stack):
    lam = moto_stack.client("lambda")
    for name in ("sluice-dev-handle_work_message", "sluice-dev-handle_job_change", "other-app-fn"):
        _function(lam, name)
    work = lam.create_event_source_mapping(FunctionName="sluice-dev-handle_work_message",
                                           EventSourceArn=_queue_arn(moto_stack.settings.work_queue),
                                           BatchSize=1)["UUID"]
    stream = lam.create_event_source_mapping(FunctionName="sluice-dev-handle_job_change",
                                             EventSourceArn=moto_stack.outputs["TableStreamArn"],
                                             StartingPosition="LATEST")["UUID"]
    other = lam.create_event_source_mapping(FunctionName="other-app-fn",
                                            EventSourceArn=_queue_arn(moto_stack.settings.aggregate_queue))["UUID"]

    names = ["sluice-dev-handle_work_message", "sluice-dev-handle_job_change"]
    assert enable_partial_batch_responses(lam, names) == [work]
    assert lam.get_event_source_mapping(UUID=work)["FunctionResponseTypes"] == [REPORT_BATCH_ITEM_FAILURES]
    assert not lam.get_event_source_mapping(UUID=stream).get("FunctionResponseTypes")
    assert not lam.get_event_source_mapping(UUID=other).get("FunctionResponseTypes")
    assert enable_partial_batch_responses(lam, names) == []  # a second deploy changes nothing
