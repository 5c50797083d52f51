"""`make deploy STAGE=dev` and `make destroy STAGE=dev`: a stage on AWS in one command.

    python -m infra.deploy deploy --stage dev [--alert-email ops@example.com] [--region eu-west-1]
                                  [--cors-origins https://a.example,https://b.example]
    python -m infra.deploy destroy --stage dev [--region eu-west-1]

deploy
 1. creates or updates stack sluice-<stage> from infra/template.yaml (the stage's
    SLUICE_*_FILES_DAYS set its lifecycle parameters; --alert-email and
    --cors-origins, once given, are kept by later deploys);
 2. writes the stack's Outputs into .chalice/config.json, stage <stage>, as the
    SLUICE_* variables chalicelib/settings.py reads (a new stage starts as a
    copy of dev's settings, with a least-privilege policy of its own written by
    infra/policy.py when dev has one);
 3. runs `chalice deploy` through infra/chalice_runtime.py;
 4. writes the WebSocket API's URLs (SLUICE_WS_ENDPOINT, SLUICE_WS_URL) into the
    stage as well and, when they changed (a stage's first deploy), runs `chalice
    deploy` once more so that every function has them;
 5. turns on ReportBatchItemFailures for the SQS event source mappings and
    gives the aggregator 2 GB of /tmp (deploy_hooks.py), which Chalice 1.34
    cannot do;
 6. prints the URLs, the queues' concurrency and how to make the first API key.

destroy runs `chalice delete`, empties the bucket (every version), deletes the
stack and takes the variables deploy wrote out of the stage's configuration.

The WebSocket variables go through the configuration and a second `chalice
deploy`, not update_function_configuration on each function, because Chalice
sets a function's whole environment from .chalice/config.json on every deploy:
a variable set behind its back would vanish at the next one, and the functions
would run without live pushes until the deploy script put it back. In the
configuration it survives, and later deploys need no second pass.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, WaiterError
from chalice.config import Config

from infra.deploy_hooks import EPHEMERAL_STORAGE_MB, enable_partial_batch_responses, set_ephemeral_storage
from infra.policy import policy_file, write_policy
from infra.stack_environment import (
    DEPLOYED_VARIABLES,
    STAGE_VARIABLE,
    app_environment,
    stack_name_for,
    stage_parameters,
)

PROJECT_DIR = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = Path(__file__).resolve().parent / "template.yaml"
# A stage that .chalice/config.json does not have yet starts as a copy of this one.
BASE_STAGE = "dev"
# What deploy writes into a stage's environment_variables, and destroy takes out.
MANAGED_VARIABLES = DEPLOYED_VARIABLES
# CloudFormation takes a template of at most this many bytes inline (TemplateBody).
TEMPLATE_BODY_LIMIT = 51_200

Clients = Callable[[str], Any]
# Runs Chalice's CLI with these arguments (["deploy", "--stage", "dev"]).
Chalice = Callable[[Sequence[str]], None]
Out = Callable[[str], None]


class DeployError(RuntimeError):
    """A step of deploy or destroy failed; the message says which and why."""


# --- Chalice, behind one boundary ------------------------------------------------------

def chalice_runtime(project_dir: Path, region: str | None) -> Chalice:
    """Chalice's CLI as infra/chalice_runtime.py runs it (the Lambda runtime pinned)."""
    if not (project_dir / "infra" / "chalice_runtime.py").is_file():
        raise DeployError(f"{project_dir / 'infra' / 'chalice_runtime.py'} is missing: "
                          "it is what packages the app for Lambda")

    def run(args: Sequence[str]) -> None:
        env = dict(os.environ)
        if region:
            env.update(AWS_DEFAULT_REGION=region, AWS_REGION=region)
        command = [sys.executable, "-m", "infra.chalice_runtime", *args]
        if subprocess.run(command, cwd=project_dir, env=env).returncode != 0:
            raise DeployError(f"chalice {' '.join(args)} failed (its output is above)")

    return run


@dataclass(frozen=True)
class ChaliceDeployment:
    """What Chalice recorded in .chalice/deployed/<stage>.json."""

    rest_api_url: str | None
    websocket_api_url: str | None
    # Chalice's name of each function (handle_work_message, api_handler) ->
    # its deployed name (sluice-dev-handle_work_message, sluice-dev).
    functions: dict[str, str]
    # The functions an SQS event source mapping feeds.
    sqs_function_names: tuple[str, ...]

    @classmethod
    def read(cls, project_dir: Path, stage: str) -> ChaliceDeployment:
        path = deployed_path(project_dir, stage)
        if not path.is_file():
            raise DeployError(f"chalice deploy left no {path}")
        resources = json.loads(path.read_text()).get("resources", [])
        by_type: dict[str, list[dict[str, Any]]] = {}
        for resource in resources:
            by_type.setdefault(resource["resource_type"], []).append(resource)
        functions = by_type.get("lambda_function", [])
        rest = next(iter(by_type.get("rest_api", [])), {})
        websocket = next(iter(by_type.get("websocket_api", [])), {})
        return cls(
            rest_api_url=rest.get("rest_api_url"),
            websocket_api_url=websocket.get("websocket_api_url"),
            functions={r["name"]: _function_name(r["lambda_arn"]) for r in functions},
            sqs_function_names=tuple(_function_name(r["lambda_arn"]) for r in by_type.get("sqs_event", [])),
        )

    def websocket_environment(self) -> dict[str, str]:
        """SLUICE_WS_URL (where clients connect) and SLUICE_WS_ENDPOINT (where the
        functions post to connections): the same API, wss:// and https://."""
        if not self.websocket_api_url:
            return {}
        url = self.websocket_api_url.rstrip("/")
        return {"SLUICE_WS_URL": url, "SLUICE_WS_ENDPOINT": "https://" + url.removeprefix("wss://")}


def deployed_path(project_dir: Path, stage: str) -> Path:
    return project_dir / ".chalice" / "deployed" / f"{stage}.json"


def _function_name(lambda_arn: str) -> str:
    return lambda_arn.split(":function:", 1)[1].split(":", 1)[0]


# --- the stage's configuration (.chalice/config.json) ---------------------------------

def config_path(project_dir: Path) -> Path:
    return project_dir / ".chalice" / "config.json"


def read_config(project_dir: Path) -> dict[str, Any]:
    return json.loads(config_path(project_dir).read_text())


def write_config(project_dir: Path, config: dict[str, Any]) -> None:
    config_path(project_dir).write_text(json.dumps(config, indent=2) + "\n")


def ensure_stage(config: dict[str, Any], stage: str) -> bool:
    """Add `stage` as a copy of the base stage (less the variables deploy
    manages), unless it is there; True if it was added."""
    stages = config.setdefault("stages", {})
    if stage in stages:
        return False
    if BASE_STAGE not in stages:
        raise DeployError(f".chalice/config.json has no stage {BASE_STAGE!r} to start stage {stage!r} from")
    new = copy.deepcopy(stages[BASE_STAGE])
    variables = new.get("environment_variables", {})
    for name in MANAGED_VARIABLES:
        variables.pop(name, None)
    # The base stage's policy grants its own resources only (infra/policy.py).
    if new.get("iam_policy_file") == policy_file(BASE_STAGE).name:
        new["iam_policy_file"] = policy_file(stage).name
    stages[stage] = new
    return True


def set_stage_variables(config: dict[str, Any], stage: str, values: Mapping[str, str]) -> bool:
    """Write `values` into the stage's environment_variables; True if any changed."""
    variables = config["stages"][stage].setdefault("environment_variables", {})
    changed = any(variables.get(name) != value for name, value in values.items())
    variables.update(values)
    return changed


def remove_stage_variables(config: dict[str, Any], stage: str, names: Iterable[str]) -> list[str]:
    """Take `names` out of the stage's environment_variables; the ones removed."""
    stage_config = config.get("stages", {}).get(stage, {})
    variables = stage_config.get("environment_variables", {})
    removed = [name for name in names if variables.pop(name, None) is not None]
    if "environment_variables" in stage_config and not variables:
        del stage_config["environment_variables"]
    return removed


def chalice_config(config: dict[str, Any], stage: str, function: str | None = None) -> Config:
    """Chalice's own reading of the configuration (global < stage < function)."""
    return Config(chalice_stage=stage, function_name=function, config_from_disk=config)


# --- the stack -------------------------------------------------------------------------

def stack_parameters(config: dict[str, Any], stage: str, alert_email: str | None = None,
                     cors_origins: str | None = None) -> dict[str, str]:
    """The template parameters this deploy sets; the others keep their value."""
    chalice = chalice_config(config, stage)
    parameters = {
        "Stage": stage,
        "AppName": config["app_name"],
        "ApiGatewayStage": chalice.api_gateway_stage,
        **stage_parameters({k: str(v) for k, v in chalice.environment_variables.items()}),
    }
    if alert_email is not None:
        parameters["AlertEmail"] = alert_email
    if cors_origins is not None:
        parameters["CorsAllowedOrigins"] = cors_origins
    return parameters


def describe_stack(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def deploy_stack(cfn: Any, parameters: Mapping[str, str], out: Out,
                 wait_delay_s: float = 5) -> dict[str, str]:
    """Create the stage's stack, or update it ("no updates" is fine); its Outputs."""
    body = TEMPLATE_PATH.read_text()
    if len(body.encode()) > TEMPLATE_BODY_LIMIT:
        raise DeployError(f"{TEMPLATE_PATH} is over CloudFormation's {TEMPLATE_BODY_LIMIT} bytes for a "
                          "template passed inline")
    name = stack_name_for(parameters["Stage"])
    stack = describe_stack(cfn, name)
    if stack is not None and stack["StackStatus"] == "ROLLBACK_COMPLETE":
        # A first create that failed: CloudFormation allows nothing but deleting it.
        out(f"stack {name} is left from a failed first deploy; deleting it")
        cfn.delete_stack(StackName=name)
        _wait(cfn, "stack_delete_complete", name, wait_delay_s)
        stack = None
    given = [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items()]
    if stack is None:
        out(f"creating stack {name}")
        cfn.create_stack(StackName=name, TemplateBody=body, Parameters=given,
                         Tags=[{"Key": "sluice:stage", "Value": parameters["Stage"]}])
        _wait(cfn, "stack_create_complete", name, wait_delay_s)
    else:
        # A parameter this deploy does not set keeps the value an earlier deploy
        # gave it (an alert e-mail, CORS origins); one never set follows the
        # template's default.
        defaults = {p["ParameterKey"]: p.get("DefaultValue")
                    for p in cfn.get_template_summary(TemplateBody=body)["Parameters"]}
        previous = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
        kept = [{"ParameterKey": key, "UsePreviousValue": True} for key, value in previous.items()
                if key in defaults and key not in parameters and value != str(defaults[key])]
        out(f"updating stack {name}")
        try:
            cfn.update_stack(StackName=name, TemplateBody=body, Parameters=given + kept,
                             Tags=[{"Key": "sluice:stage", "Value": parameters["Stage"]}])
        except ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
            out(f"stack {name} is up to date")
        else:
            _wait(cfn, "stack_update_complete", name, wait_delay_s)
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _wait(cfn: Any, waiter: str, name: str, delay_s: float) -> None:
    try:
        # An hour at the most: a new table or a bucket takes a minute or two.
        attempts = int(3600 / max(delay_s, 1))
        cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig={"Delay": delay_s, "MaxAttempts": attempts})
    except WaiterError as exc:
        raise DeployError(f"stack {name}: {exc}; {_failure_reasons(cfn, name)}") from None


def _failure_reasons(cfn: Any, name: str) -> str:
    try:
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    except ClientError:
        return "no events"
    reasons = [f"{e['LogicalResourceId']}: {e['ResourceStatusReason']}" for e in events
               if e.get("ResourceStatus", "").endswith("FAILED") and e.get("ResourceStatusReason")]
    return "; ".join(reasons[:10]) or "no failed resource named"


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object, version, delete marker and unfinished upload; how many objects."""
    try:
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    except ClientError as exc:
        if "NoSuchBucket" in str(exc):
            return 0
        raise
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    if versioning in ("Enabled", "Suspended"):
        pages = ([{"Key": v["Key"], "VersionId": v["VersionId"]}
                  for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
                 for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket))
    else:
        pages = ([{"Key": o["Key"]} for o in page.get("Contents", [])]
                 for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket))
    deleted = 0
    for objects in pages:  # a page holds at most 1,000 keys, as delete_objects takes
        if not objects:
            continue
        errors = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True}).get("Errors")
        if errors:
            raise DeployError(f"could not empty {bucket}: {errors[:3]}")
        deleted += len(objects)
    return deleted


# --- deploy and destroy ----------------------------------------------------------------

def deploy(stage: str, *, clients: Clients, chalice: Chalice, project_dir: Path = PROJECT_DIR,
           alert_email: str | None = None, cors_origins: str | None = None, out: Out = print,
           wait_delay_s: float = 5) -> ChaliceDeployment:
    account = clients("sts").get_caller_identity()["Account"]
    region = clients("cloudformation").meta.region_name
    out(f"deploying stage {stage} to account {account}, region {region}")
    config = read_config(project_dir)
    if ensure_stage(config, stage):
        out(f"stage {stage} added to .chalice/config.json as a copy of {BASE_STAGE}'s settings")
    parameters = stack_parameters(config, stage, alert_email, cors_origins)
    outputs = deploy_stack(clients("cloudformation"), parameters, out, wait_delay_s=wait_delay_s)
    set_stage_variables(config, stage, {**app_environment(outputs), STAGE_VARIABLE: stage})
    write_config(project_dir, config)
    # A stage with its own least-privilege policy (infra/policy.py) needs the file before Chalice runs.
    wants_policy_file = chalice_config(config, stage).autogen_policy is False
    if wants_policy_file and not policy_file(stage, project_dir).is_file():
        path = write_policy(stage, project_dir)
        out(f"wrote {path}: the stage's functions may use the stage's own resources only")

    chalice(["deploy", "--stage", stage])
    deployment = ChaliceDeployment.read(project_dir, stage)
    config = read_config(project_dir)
    if set_stage_variables(config, stage, deployment.websocket_environment()):
        write_config(project_dir, config)
        out("the WebSocket API's URL is new to the stage's configuration: deploying again so every "
            "function has it")
        chalice(["deploy", "--stage", stage])
        deployment = ChaliceDeployment.read(project_dir, stage)

    lambda_client = clients("lambda")
    changed = enable_partial_batch_responses(lambda_client, deployment.sqs_function_names)
    out(f"ReportBatchItemFailures turned on for {len(changed)} SQS event source mapping(s)")
    sizes = {deployment.functions[name]: mb for name, mb in EPHEMERAL_STORAGE_MB.items()
             if name in deployment.functions}
    for function in set_ephemeral_storage(lambda_client, sizes):
        out(f"{function}: {sizes[function]} MB of ephemeral storage (/tmp)")
    for line in summary(stage, outputs, deployment, clients, config):
        out(line)
    return deployment


def destroy(stage: str, *, clients: Clients, chalice: Chalice, project_dir: Path = PROJECT_DIR,
            out: Out = print, wait_delay_s: float = 5) -> None:
    if deployed_path(project_dir, stage).is_file():
        chalice(["delete", "--stage", stage])
    else:
        out(f"nothing of Chalice's to delete ({deployed_path(project_dir, stage)} is absent)")
    cfn = clients("cloudformation")
    name = stack_name_for(stage)
    stack = describe_stack(cfn, name)
    if stack is None:
        out(f"stack {name} does not exist")
    else:
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        if outputs.get("BucketName"):
            deleted = empty_bucket(clients("s3"), outputs["BucketName"])
            out(f"bucket {outputs['BucketName']} emptied ({deleted} object(s) and version(s) deleted)")
        out(f"deleting stack {name}")
        cfn.delete_stack(StackName=name)
        _wait(cfn, "stack_delete_complete", name, wait_delay_s)
    config = read_config(project_dir)
    removed = remove_stage_variables(config, stage, MANAGED_VARIABLES)
    if removed:
        write_config(project_dir, config)
        out(f"removed {', '.join(removed)} from stage {stage} in .chalice/config.json")
    out(f"stage {stage} destroyed")


def summary(stage: str, outputs: Mapping[str, str], deployment: ChaliceDeployment, clients: Clients,
            config: dict[str, Any]) -> list[str]:
    api_url = (deployment.rest_api_url or "").rstrip("/")
    ws_url = (deployment.websocket_api_url or "(none)").rstrip("/")
    lines = [
        "",
        f"Sluice stage {stage} is deployed",
        f"  REST API    {api_url}",
        f"  Dashboard   {api_url}/",
        f"  WebSocket   {ws_url}",
        f"  Bucket      {outputs.get('BucketName')}",
        f"  Alerts      {_alerts(clients('sns'), outputs.get('AlertsTopicArn'))}",
        "  Concurrency (per SQS handler; the stage's SLUICE_<QUEUE>_BATCH_SIZE and _MAX_CONCURRENCY)",
        *(f"    {line}" for line in concurrency_lines(clients("lambda"), deployment)),
    ]
    variables = chalice_config(config, stage).environment_variables
    if not variables.get("SLUICE_CALLBACK_SECRET"):
        lines.append("  Note        SLUICE_CALLBACK_SECRET is not set: jobs that ask for a callback "
                     "are refused")
    if variables.get("SLUICE_OCR_ENGINE") != "textract":
        lines.append("  Note        SLUICE_OCR_ENGINE is not textract: Lambda has no Tesseract for "
                     "the pages processor")
    lines += [
        "",
        "Make the first API key (it is printed once):",
        f"  .venv/bin/python -m sluice.admin keys create --stage {stage} --tenant <tenant> "
        "--name <what it is for>",
        "Then:",
        f"  export SLUICE_API_URL={api_url} SLUICE_API_KEY=<the key>",
        '  curl -H "Authorization: Bearer $SLUICE_API_KEY" $SLUICE_API_URL/jobs',
        f"  open {api_url}/#key=<the key> to sign the dashboard in",
    ]
    return lines


def _alerts(sns: Any, topic_arn: str | None) -> str:
    if not topic_arn:
        return "(no topic)"
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic_arn).get("Subscriptions", [])
    if not subscriptions:
        return f"{topic_arn} (no subscription: make deploy ALERT_EMAIL=you@example.com)"
    said = [s["Endpoint"] + (" (confirm the e-mail SNS sent)" if s["SubscriptionArn"] == "PendingConfirmation"
                             else "") for s in subscriptions]
    return f"{topic_arn} -> {', '.join(said)}"


def concurrency_lines(lambda_client: Any, deployment: ChaliceDeployment) -> list[str]:
    """Each SQS handler's batch size, cap and reserved concurrency, as deployed;
    a reserved concurrency below the cap throttles its queue's messages into the DLQ."""
    lines = []
    for function in deployment.sqs_function_names:
        concurrency = lambda_client.get_function_concurrency(FunctionName=function)
        reserved = concurrency.get("ReservedConcurrentExecutions")
        reserved_words = "none" if reserved is None else str(reserved)
        for page in lambda_client.get_paginator("list_event_source_mappings").paginate(FunctionName=function):
            for mapping in page.get("EventSourceMappings", []):
                cap = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")
                line = (f"{function}: batch {mapping.get('BatchSize')}, "
                        f"at most {cap or 'unlimited'} at once, reserved {reserved_words}")
                if reserved is not None and (cap is None or reserved < cap):
                    line += "  WARNING: reserved concurrency below the cap throttles messages into the DLQ"
                lines.append(line)
    return lines


# --- command line ----------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["deploy", "destroy"])
    parser.add_argument("--stage", default=BASE_STAGE, help="the Chalice stage (default: dev)")
    parser.add_argument("--region", help="AWS region (default: the AWS CLI's, AWS_DEFAULT_REGION)")
    parser.add_argument("--alert-email", help="e-mail the alarms to this address (kept by later deploys)")
    parser.add_argument("--cors-origins", help="comma-separated origins allowed to POST to and GET from "
                        "the bucket in a browser (default *; kept by later deploys)")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import boto3

    session = boto3.session.Session(region_name=args.region)
    if not session.region_name:
        print("no AWS region: pass --region (make deploy REGION=...) or set AWS_DEFAULT_REGION",
              file=sys.stderr)
        return 2
    built: dict[str, Any] = {}

    def clients(service: str) -> Any:
        if service not in built:
            built[service] = session.client(service)
        return built[service]

    try:
        chalice = chalice_runtime(args.project_dir, session.region_name)
        if args.action == "deploy":
            deploy(args.stage, clients=clients, chalice=chalice, project_dir=args.project_dir,
                   alert_email=args.alert_email, cors_origins=args.cors_origins)
        else:
            destroy(args.stage, clients=clients, chalice=chalice, project_dir=args.project_dir)
    except (DeployError, ClientError, BotoCoreError) as exc:  # no credentials, a refused call
        print(f"{args.action} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
