"""`make deploy` and `make destroy` (infra/deploy.py) end to end against the
embedded AWS, with Chalice stubbed at its boundary: FakeChalice does what
`chalice deploy` does that the script depends on (imports the app with the
stage's environment, creates its functions and SQS event source mappings,
writes .chalice/deployed/<stage>.json), and the stack, the stage's
configuration, the mappings and the functions' environment are checked as
AWS and Chalice would leave them. Each test works on a copy of .chalice/."""
from __future__ import annotations

import io
import json
import shutil
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalice import app as chalice_app
from chalice.config import Config

from infra.deploy import MANAGED_VARIABLES, deploy, deployed_path, destroy, ensure_stage
from infra.deploy_hooks import REPORT_BATCH_ITEM_FAILURES
from infra.stack_environment import app_environment
from local_cloud.sources import chalice_environment, websocket_routes
from tests.support.fresh_app import ROOT, load_app

# deploy.py creates the stack as CloudFormation would; moto skips its alarms
# (test_infra_template.py checks them where local_cloud creates them).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS..CloudWatch..Alarm:UserWarning")

REGION = "us-east-1"
REST_ID, WS_ID = "r3st4p1id0", "w3bs0ck3t0"


class FakeChalice:
    """`chalice deploy --stage S` and `chalice delete --stage S`, as far as the
    deploy script can tell: Lambda functions with the stage's environment,
    SQS event source mappings with the app's batch sizes and caps (an update
    keeps FunctionResponseTypes, as Chalice's does), and Chalice's record."""

    def __init__(self, clients: Any, project_dir: Path):
        self._clients = clients
        self._project_dir = project_dir
        self.calls: list[list[str]] = []

    def __call__(self, args: list[str]) -> None:
        self.calls.append(list(args))
        stage = args[args.index("--stage") + 1]
        {"deploy": self._deploy, "delete": self._delete}[args[0]](stage)

    def _deploy(self, stage: str) -> None:
        config = json.loads((self._project_dir / ".chalice" / "config.json").read_text())
        app = load_app(chalice_environment(config, stage))
        lam = self._clients("lambda")
        names = {"api_handler": f"sluice-{stage}"}
        for name in ([s.name for s in app.event_sources] + [a.name for a in app.builtin_auth_handlers]
                     + list(websocket_routes(app).handlers())):
            names[name] = f"sluice-{stage}-{name}"
        resources, arns = [], {}
        for name, function in names.items():
            scoped = Config(chalice_stage=stage, function_name=name, config_from_disk=config)
            environment = {"Variables": {k: str(v) for k, v in scoped.environment_variables.items()}}
            try:
                arns[name] = lam.update_function_configuration(FunctionName=function,
                                                               Environment=environment)["FunctionArn"]
            except ClientError:
                arns[name] = lam.create_function(
                    FunctionName=function, Runtime="python3.12", Role=self._role(stage), Handler="app.app",
                    Code={"ZipFile": _code()}, Timeout=scoped.lambda_timeout, Environment=environment,
                )["FunctionArn"]
            resources.append({"name": name, "resource_type": "lambda_function", "lambda_arn": arns[name]})
        for source in app.event_sources:
            if isinstance(source, chalice_app.SQSEventConfig):
                resources.append(self._sqs_mapping(source, names[source.name], arns[source.name]))
        api_stage = Config(chalice_stage=stage, config_from_disk=config).api_gateway_stage
        resources += [
            {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": REST_ID,
             "rest_api_url": f"https://{REST_ID}.execute-api.{REGION}.amazonaws.com/{api_stage}/"},
            {"name": "websocket_api", "resource_type": "websocket_api", "websocket_api_id": WS_ID,
             "websocket_api_url": f"wss://{WS_ID}.execute-api.{REGION}.amazonaws.com/{api_stage}/"},
        ]
        path = deployed_path(self._project_dir, stage)
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({"resources": resources, "schema_version": "2.0", "backend": "api"}))

    def _sqs_mapping(self, source: chalice_app.SQSEventConfig, function: str, arn: str) -> dict[str, Any]:
        lam = self._clients("lambda")
        queue_arn = _queue_arn(self._clients("sqs"), source.queue)
        settings: dict[str, Any] = {"BatchSize": source.batch_size}
        if source.maximum_concurrency:
            settings["ScalingConfig"] = {"MaximumConcurrency": source.maximum_concurrency}
        existing = [m for m in lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
                    if m["EventSourceArn"] == queue_arn]
        if existing:
            event_uuid = existing[0]["UUID"]
            lam.update_event_source_mapping(UUID=event_uuid, **settings)
        else:
            event_uuid = lam.create_event_source_mapping(FunctionName=function, EventSourceArn=queue_arn,
                                                         **settings)["UUID"]
        return {"name": f"{source.name}-sqs-event-source", "resource_type": "sqs_event",
                "queue": source.queue, "queue_arn": queue_arn, "event_uuid": event_uuid, "lambda_arn": arn}

    def _delete(self, stage: str) -> None:
        path = deployed_path(self._project_dir, stage)
        lam = self._clients("lambda")
        for resource in json.loads(path.read_text())["resources"]:
            if resource["resource_type"] == "sqs_event":
                lam.delete_event_source_mapping(UUID=resource["event_uuid"])
            elif resource["resource_type"] == "lambda_function":
                lam.delete_function(FunctionName=resource["lambda_arn"])
        path.unlink()

    def _role(self, stage: str) -> str:
        iam = self._clients("iam")
        name = f"sluice-{stage}"
        try:
            return iam.get_role(RoleName=name)["Role"]["Arn"]
        except ClientError:
            return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": []}))["Role"]["Arn"]


def _code() -> bytes:
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "app = None\n")
    return code.getvalue()


def _queue_arn(sqs: Any, name: str) -> str:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


@pytest.fixture
def aws(embedded_stack):
    clients, _ = embedded_stack
    return clients


@pytest.fixture
def project(tmp_path):
    """A copy of the app's .chalice/ (never the real configuration)."""
    shutil.copytree(ROOT / ".chalice", tmp_path / ".chalice",
                    ignore=shutil.ignore_patterns("deployed", "deployments"))
    return tmp_path


@pytest.fixture
def stage():
    return f"t{uuid.uuid4().hex[:8]}"


def _deploy(stage: str, aws: Any, project: Path, chalice: FakeChalice, **options: Any) -> list[str]:
    printed: list[str] = []
    deploy(stage, clients=aws, chalice=chalice, project_dir=project, out=printed.append, wait_delay_s=0.2,
           **options)
    return printed


def _config(project: Path) -> dict[str, Any]:
    return json.loads((project / ".chalice" / "config.json").read_text())


def _functions(aws: Any, stage: str) -> dict[str, dict[str, str]]:
    """Each of the stage's functions' environment."""
    found = {}
    for page in aws("lambda").get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            name = function["FunctionName"]
            if name == f"sluice-{stage}" or name.startswith(f"sluice-{stage}-"):
                found[name] = function.get("Environment", {}).get("Variables", {})
    return found


def _mappings(aws: Any, stage: str) -> dict[str, dict[str, Any]]:
    mappings = aws("lambda").list_event_source_mappings()["EventSourceMappings"]
    return {m["FunctionArn"].rsplit(":", 1)[-1]: m for m in mappings
            if f":function:sluice-{stage}-" in m["FunctionArn"]}


def test_deploy_builds_the_stack_writes_the_stage_and_finishes_what_chalice_leaves(aws, project, stage):
    chalice = FakeChalice(aws, project)
    dev_before = _config(project)["stages"]["dev"]
    printed = _deploy(stage, aws, project, chalice, alert_email="ops@example.com")

    stack = aws("cloudformation").describe_stacks(StackName=f"sluice-{stage}")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert {k: parameters[k] for k in ("Stage", "AppName", "ApiGatewayStage", "AlertEmail")} == {
        "Stage": stage, "AppName": "sluice", "ApiGatewayStage": "api", "AlertEmail": "ops@example.com"}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["BucketName"] == f"sluice-{stage}-data"

    # The stage: dev's settings, this stack's names, the WebSocket API's URLs.
    config = _config(project)
    assert config["stages"]["dev"] == dev_before
    new = config["stages"][stage]
    assert new["lambda_functions"] == dev_before["lambda_functions"]
    # Its own least-privilege policy, on its own resources, never dev's.
    assert new["iam_policy_file"] == f"policy-{stage}.json"
    policy = (project / ".chalice" / f"policy-{stage}.json").read_text()
    assert f"sluice-{stage}-data" in policy and "sluice-dev-" not in policy
    ws_url = f"wss://{WS_ID}.execute-api.{REGION}.amazonaws.com/api"
    assert new["environment_variables"] == {
        **dev_before["environment_variables"], **app_environment(outputs), "SLUICE_STAGE": stage,
        "SLUICE_WS_URL": ws_url, "SLUICE_WS_ENDPOINT": f"https://{WS_ID}.execute-api.{REGION}.amazonaws.com/api"}
    # The URL is known only after Chalice made the API: a second deploy gives it to every function.
    assert chalice.calls == [["deploy", "--stage", stage]] * 2
    functions = _functions(aws, stage)
    assert len(functions) == 13
    for name, variables in functions.items():
        assert variables["SLUICE_WS_URL"] == ws_url, name
        assert variables["SLUICE_TABLE_STREAM_ARN"] == outputs["TableStreamArn"], name
        # The Stage dimension of its metrics.
        assert variables["SLUICE_STAGE"] == stage, name

    # Each SQS handler: the dev stage's batch size and cap, partial batch responses on.
    mappings = _mappings(aws, stage)
    dev = dev_before["environment_variables"]
    on = [REPORT_BATCH_ITEM_FAILURES]
    assert {name: (m["BatchSize"], m["ScalingConfig"]["MaximumConcurrency"], m["FunctionResponseTypes"])
            for name, m in mappings.items()} == {
        f"sluice-{stage}-{handler}": (int(dev[f"SLUICE_{prefix}_BATCH_SIZE"]),
                                      int(dev[f"SLUICE_{prefix}_MAX_CONCURRENCY"]), on)
        for handler, prefix in [("handle_work_message", "WORK"), ("handle_aggregate_message", "AGGREGATE"),
                                ("handle_callback_message", "CALLBACK"),
                                ("handle_work_dead_letter", "DEAD_LETTER"),
                                ("handle_aggregate_dead_letter", "DEAD_LETTER")]}

    text = "\n".join(printed)
    rest_url = f"https://{REST_ID}.execute-api.{REGION}.amazonaws.com/api"
    assert f"REST API    {rest_url}\n" in text
    assert f"Dashboard   {rest_url}/\n" in text
    assert f"WebSocket   {ws_url}\n" in text
    assert f"python -m sluice.admin keys create --stage {stage} --tenant" in text
    assert f"sluice-{stage}-alerts -> ops@example.com" in text  # moto confirms at once; SNS asks by e-mail
    cap = dev["SLUICE_WORK_MAX_CONCURRENCY"]
    assert f"sluice-{stage}-handle_work_message: batch 1, at most {cap} at once, reserved none" in text
    assert "ReportBatchItemFailures turned on for 5 SQS event source mapping(s)" in text


def test_a_second_deploy_changes_nothing_harmful(aws, project, stage):
    chalice = FakeChalice(aws, project)
    _deploy(stage, aws, project, chalice, alert_email="ops@example.com")
    config, mappings = _config(project), _mappings(aws, stage)
    stack = aws("cloudformation").describe_stacks(StackName=f"sluice-{stage}")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    item = {"PK": {"S": "JOB#kept"}, "SK": {"S": "META"}}
    aws("s3").put_object(Bucket=outputs["BucketName"], Key="results/kept.json", Body=b"{}")
    aws("dynamodb").put_item(TableName=outputs["TableName"], Item=item)

    printed = _deploy(stage, aws, project, chalice)  # no --alert-email this time

    assert chalice.calls == [["deploy", "--stage", stage]] * 3  # one more, the WebSocket URL known
    assert _config(project) == config
    assert {n: m["UUID"] for n, m in _mappings(aws, stage).items()} == \
        {n: m["UUID"] for n, m in mappings.items()}
    assert "ReportBatchItemFailures turned on for 0 SQS event source mapping(s)" in printed
    stack = aws("cloudformation").describe_stacks(StackName=f"sluice-{stage}")["Stacks"][0]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters["AlertEmail"] == "ops@example.com"
    assert aws("s3").get_object(Bucket=outputs["BucketName"], Key="results/kept.json")["Body"].read() == b"{}"
    assert aws("dynamodb").get_item(TableName=outputs["TableName"], Key=item).get("Item")


def test_destroy_removes_chalices_part_the_bucket_contents_the_stack_and_the_variables(aws, project, stage):
    chalice = FakeChalice(aws, project)
    _deploy(stage, aws, project, chalice)
    bucket = f"sluice-{stage}-data"
    s3 = aws("s3")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"one", b"two"):  # two versions of one key
        s3.put_object(Bucket=bucket, Key="uploads/a.csv", Body=body)
    s3.put_object(Bucket=bucket, Key="results/r.json", Body=b"{}")
    s3.delete_object(Bucket=bucket, Key="results/r.json")  # a delete marker
    s3.create_multipart_upload(Bucket=bucket, Key="uploads/unfinished.csv")

    printed: list[str] = []
    destroy(stage, clients=aws, chalice=chalice, project_dir=project, out=printed.append, wait_delay_s=0.2)

    assert chalice.calls[-1] == ["delete", "--stage", stage]
    assert _functions(aws, stage) == {}
    assert f"bucket {bucket} emptied (4 object(s) and version(s) deleted)" in printed
    with pytest.raises(ClientError):
        aws("cloudformation").describe_stacks(StackName=f"sluice-{stage}")
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=bucket)
    variables = _config(project)["stages"][stage]["environment_variables"]
    assert not set(variables) & set(MANAGED_VARIABLES)
    # What the stage had of its own (dev's concurrency settings, copied) stays.
    assert variables == _config(project)["stages"]["dev"]["environment_variables"]


def test_destroy_of_a_stage_never_deployed_changes_nothing(aws, project, stage):
    before = _config(project)
    printed: list[str] = []
    destroy(stage, clients=aws, chalice=FakeChalice(aws, project), project_dir=project, out=printed.append)
    assert _config(project) == before
    assert f"stack sluice-{stage} does not exist" in printed


def test_a_new_stage_starts_from_devs_settings_without_devs_resources():
    config = {"app_name": "sluice", "stages": {"dev": {
        "api_gateway_stage": "api", "autogen_policy": False, "iam_policy_file": "policy-dev.json",
        "lambda_functions": {"handle_work_message": {"lambda_timeout": 60}},
        "environment_variables": {"SLUICE_WORK_MAX_CONCURRENCY": "50", "SLUICE_BUCKET": "sluice-dev-data",
                                  "SLUICE_WS_URL": "wss://dev.example/api"}}}}
    assert ensure_stage(config, "prod")
    assert config["stages"]["prod"] == {
        "api_gateway_stage": "api", "autogen_policy": False, "iam_policy_file": "policy-prod.json",
        "lambda_functions": {"handle_work_message": {"lambda_timeout": 60}},
        "environment_variables": {"SLUICE_WORK_MAX_CONCURRENCY": "50"}}
    assert config["stages"]["dev"]["environment_variables"]["SLUICE_BUCKET"] == "sluice-dev-data"
    assert not ensure_stage(config, "prod")
