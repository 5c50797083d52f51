"""infra/template.yaml against the rules it must keep: cfn-lint, a visibility
timeout of six times the consuming function's timeout on every queue a Lambda
reads, an alarm for every dead-letter queue, the work queue's oldest message,
the API's 5xx and every function's errors and throttles, all e-mailed through
one topic; and the same alarms, topic and CORS deployed into the embedded AWS."""
from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from chalice import app as chalice_app
from chalice.config import Config

from infra.deploy import TEMPLATE_BODY_LIMIT
from local_cloud.sources import load_chalice_config, websocket_routes
from local_cloud.stack import (
    TEMPLATE_PATH,
    UnsupportedPropertyError,
    deploy_stack,
    load_template,
    missing_resource_calls,
)
from tests.support.fresh_app import ROOT, load_app

TOPIC = {"Ref": "AlertsTopic"}


def _resources(kind: str) -> dict[str, dict]:
    return {logical: r.get("Properties", {}) for logical, r in load_template()["Resources"].items()
            if r["Type"] == kind}


def _deployed_functions(app: chalice_app.Chalice) -> set[str]:
    """Every function name Chalice deploys for the app, as the template writes it."""
    names = {s.name for s in app.event_sources}
    names |= {auth.name for auth in app.builtin_auth_handlers}
    names |= set(websocket_routes(app).handlers())
    functions = {f"${{AppName}}-${{Stage}}-{name}" for name in names}
    if app.routes:
        functions.add("${AppName}-${Stage}")  # the REST API's handler
    return functions


def test_template_passes_cfn_lint():
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or shutil.which("cfn-lint")
    assert cfn_lint, "cfn-lint is in requirements-dev.txt"
    result = subprocess.run([cfn_lint, str(TEMPLATE_PATH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_fits_in_one_create_stack_call():
    # infra/deploy.py passes it inline (TemplateBody); beyond this it would need S3.
    assert len(TEMPLATE_PATH.read_bytes()) <= TEMPLATE_BODY_LIMIT


def test_every_queue_a_function_reads_outlasts_six_of_its_timeouts():
    app = load_app({})  # default names: the template's names for stage "local"
    config = load_chalice_config(ROOT)
    queues = {props["QueueName"]["Fn::Sub"].replace("${Stage}", "local"): (logical, props)
              for logical, props in _resources("AWS::SQS::Queue").items()}
    consumers = [s for s in app.event_sources if isinstance(s, chalice_app.SQSEventConfig)]
    assert len(consumers) == 5
    short = []
    for source in consumers:
        assert source.queue in queues, f"{source.name} reads {source.queue}, which the template lacks"
        logical, props = queues[source.queue]
        function = Config(chalice_stage="dev", function_name=source.name, config_from_disk=config)
        timeout = function.lambda_timeout
        visibility = props.get("VisibilityTimeout", 30)  # SQS's default
        if visibility < 6 * timeout:
            short.append(f"{logical}: {visibility} s < 6 x {timeout} s ({source.name})")
    assert not short


def test_every_alarm_notifies_the_alerts_topic_whose_subscription_is_optional():
    alarms = _resources("AWS::CloudWatch::Alarm")
    assert len(alarms) > 20
    for logical, props in alarms.items():
        assert props["AlarmActions"] == [TOPIC], logical
        assert props["OKActions"] == [TOPIC], logical
    template = load_template()
    topic = template["Resources"]["AlertsTopic"]["Properties"]
    assert topic["Subscription"] == {"Fn::If": [
        "HasAlertEmail", [{"Endpoint": {"Ref": "AlertEmail"}, "Protocol": "email"}], []]}
    assert template["Parameters"]["AlertEmail"]["Default"] == ""


def test_every_function_chalice_deploys_has_an_errors_and_a_throttles_alarm():
    watched = {(p["MetricName"], p["Dimensions"][0]["Value"]["Fn::Sub"])
               for p in _resources("AWS::CloudWatch::Alarm").values()
               if p.get("Namespace") == "AWS/Lambda" and p["Dimensions"][0]["Name"] == "FunctionName"}
    functions = _deployed_functions(load_app({}))
    assert len(functions) == 13
    assert watched == {(metric, f) for f in functions for metric in ("Errors", "Throttles")}
    # The names Chalice gives: <app_name>-<stage>-<function>.
    parameters = load_template()["Parameters"]
    assert parameters["AppName"]["Default"] == load_chalice_config(ROOT)["app_name"]


def test_dead_letters_the_oldest_work_message_and_api_5xx_are_alarmed():
    alarms = _resources("AWS::CloudWatch::Alarm").values()
    queues = _resources("AWS::SQS::Queue")
    dlqs = {props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            for props in queues.values() if "RedrivePolicy" in props}
    assert dlqs == {"WorkDLQ", "AggregateDLQ", "ResultsDLQ", "CallbackDLQ"}
    # A DLQ alarm counts messages waiting and messages taken (Sluice consumes two of them).
    watched = {}
    for props in alarms:
        for query in props.get("Metrics", []):
            if "MetricStat" in query:
                metric = query["MetricStat"]["Metric"]
                queue = metric["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
                watched.setdefault(queue, set()).add(metric["MetricName"])
    both = {"ApproximateNumberOfMessagesVisible", "NumberOfMessagesReceived"}
    assert watched == {dlq: both for dlq in dlqs}

    (age,) = [p for p in alarms if p.get("MetricName") == "ApproximateAgeOfOldestMessage"]
    assert age["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["WorkQueue", "QueueName"]}}]
    assert age["Threshold"] == {"Ref": "OldestWorkMessageAlarmSeconds"}

    (api,) = [p for p in alarms if p.get("Namespace") == "AWS/ApiGateway"]
    assert api["MetricName"] == "5XXError"
    assert api["Dimensions"] == [{"Name": "ApiName", "Value": {"Ref": "AppName"}},
                                 {"Name": "Stage", "Value": {"Ref": "ApiGatewayStage"}}]
    dev = load_chalice_config(ROOT)["stages"]["dev"]
    assert load_template()["Parameters"]["ApiGatewayStage"]["Default"] == dev["api_gateway_stage"]


def test_the_embedded_aws_gets_the_same_alarms_topic_subscription_and_cors(embedded_stack):
    clients, _ = embedded_stack
    stage = f"t{uuid.uuid4().hex[:8]}"
    outputs = deploy_stack(clients, stage=stage, parameters={
        "AlertEmail": "ops@example.com", "CorsAllowedOrigins": "https://a.example,https://b.example"})
    topic = outputs["AlertsTopicArn"]
    (subscription,) = clients("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ops@example.com")

    alarms = clients("cloudwatch").describe_alarms(AlarmNamePrefix=f"sluice-{stage}-")["MetricAlarms"]
    assert len(alarms) == len(_resources("AWS::CloudWatch::Alarm"))
    assert {a["AlarmActions"][0] for a in alarms} == {topic}
    by_name = {a["AlarmName"]: a for a in alarms}
    worker = by_name[f"sluice-{stage}-handle_work_message-errors"]
    assert worker["Dimensions"] == [{"Name": "FunctionName", "Value": f"sluice-{stage}-handle_work_message"}]
    age = by_name[f"sluice-{stage}-work-oldest-message"]
    assert (age["Dimensions"][0]["Value"], age["Threshold"]) == (outputs["WorkQueueName"], 900.0)
    dlq = by_name[f"sluice-{stage}-work-dlq-messages"]
    stats = [q["MetricStat"] for q in dlq["Metrics"] if "MetricStat" in q]
    queues = {stat["Metric"]["Dimensions"][0]["Value"] for stat in stats}
    assert queues == {outputs["WorkDLQName"]}

    rules = {r["ID"]: r for r in clients("s3").get_bucket_cors(Bucket=outputs["BucketName"])["CORSRules"]}
    assert rules["presigned-post-upload"]["AllowedMethods"] == ["POST"]
    assert rules["presigned-get-download"]["AllowedMethods"] == ["GET", "HEAD"]
    for rule in rules.values():
        assert rule["AllowedOrigins"] == ["https://a.example", "https://b.example"]


def test_without_an_address_the_topic_has_no_subscription(embedded_stack):
    clients, outputs = embedded_stack
    subscriptions = clients("sns").list_subscriptions_by_topic(TopicArn=outputs["AlertsTopicArn"])
    assert subscriptions["Subscriptions"] == []


def test_an_alarm_local_cloud_cannot_replay_is_refused_not_dropped():
    template = load_template()
    alarm = template["Resources"]["WorkQueueAgeAlarm"]["Properties"]
    alarm["AlarmDescription"] = {"Fn::Join": ["", ["a", "b"]]}
    created = {logical: f"http://q/{logical}" for logical in template["Resources"]}
    with pytest.raises(UnsupportedPropertyError, match="Fn::Join"):
        missing_resource_calls(template, created)
