"""Deploy infra/template.yaml into the embedded AWS, the way CloudFormation would.

The local resources come from the very template that production deploys, so a
queue setting or a table index cannot drift between the two. moto's CloudFormation
creates the resources but silently ignores a few properties (checked against
moto 5.2.1: ``FakeBucket.create_from_cloudformation_json`` reads only
BucketEncryption and Tags; ``Table.create_from_cloudformation_json`` never reads
TimeToLiveSpecification or PointInTimeRecoverySpecification). ``MOTO_IGNORED``
lists them, and ``apply_ignored_properties`` sets each one through the service
API from the template's own values, so the template stays the only source. A
``Ref`` to one of the template's Parameters in such a property is resolved to
the value the stack was deployed with (the stage's, from the environment).
moto's CloudFormation also creates no CloudWatch alarm at all: ``MOTO_MISSING``
lists such resource types, and ``missing_resource_calls`` creates each one
through its service API from the template's properties.
"""
from __future__ import annotations

import logging
import re
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The stage parameters and the Outputs' SLUICE_* names are shared with the
# deploy script (python -m infra.deploy), so both read the stack the same way.
from infra.stack_environment import (  # noqa: F401 - re-exported for local_cloud's callers
    PARAMETERS_FROM_ENV,
    app_environment,
    stack_name_for,
    stage_parameters,
)

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "infra" / "template.yaml"


class StackDeployError(RuntimeError):
    """The stack did not reach CREATE_COMPLETE; the message carries the reasons."""


class UnsupportedPropertyError(StackDeployError):
    """A property local_cloud must apply itself uses a shape it cannot translate."""


# --- reading the template ---------------------------------------------------------

class _CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation's short-form tags (!Sub, !GetAtt...)."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


# --- properties moto ignores, applied through the APIs ------------------------------

def parameter_values(template: dict[str, Any], given: Mapping[str, str]) -> dict[str, Any]:
    """Every parameter's value: the one given, else the template's default; a
    CommaDelimitedList's as the list a Ref to it gives."""
    specs = template.get("Parameters", {})
    values = {name: str(spec["Default"]) for name, spec in specs.items() if "Default" in spec}
    values.update(given)
    return {name: value.split(",") if specs.get(name, {}).get("Type") == "CommaDelimitedList" else value
            for name, value in values.items()}


def _resolve_parameters(value: Any, parameters: Mapping[str, Any]) -> Any:
    """`{"Ref": <parameter>}` replaced by the parameter's value, anywhere in `value`."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            return parameters[value["Ref"]]
        return {k: _resolve_parameters(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_parameters(v, parameters) for v in value]
    return value


def _literal(value: Any, where: str) -> Any:
    """Refuse intrinsic functions: these properties must be plain values to be replayed."""
    if isinstance(value, dict):
        if any(k == "Ref" or k.startswith("Fn::") for k in value):
            raise UnsupportedPropertyError(f"{where} uses {value}; local_cloud needs a literal")
        return {k: _literal(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_literal(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _pick(props: dict[str, Any], mapping: dict[str, str], where: str) -> dict[str, Any]:
    """Rename CloudFormation keys to API keys; an unknown key is an error, never dropped."""
    if not isinstance(props, dict):
        raise UnsupportedPropertyError(f"{where}: expected a mapping, got {props!r}")
    unknown = set(props) - set(mapping)
    if unknown:
        raise UnsupportedPropertyError(
            f"{where}: local_cloud/stack.py does not translate {sorted(unknown)} yet"
        )
    return {mapping[k]: v for k, v in props.items()}


# Each translator turns (physical id, template value) into one API call:
# (service, operation, keyword arguments). Pure, so a template shape local_cloud
# cannot translate is refused before anything is applied.
ApiCall = tuple[str, str, dict[str, Any]]


def _public_access_block(bucket: str, value: dict[str, Any]) -> ApiCall:
    config = _pick(
        value,
        {k: k for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")},
        "PublicAccessBlockConfiguration",
    )
    return "s3", "put_public_access_block", {
        "Bucket": bucket, "PublicAccessBlockConfiguration": config,
    }


def _lifecycle(bucket: str, value: dict[str, Any]) -> ApiCall:
    rules = []
    for i, rule in enumerate(_pick(value, {"Rules": "Rules"}, "LifecycleConfiguration")["Rules"]):
        api = _pick(
            rule,
            {
                "Id": "ID",
                "Status": "Status",
                "Prefix": "Prefix",
                "ExpirationInDays": "ExpirationInDays",
                "AbortIncompleteMultipartUpload": "AbortIncompleteMultipartUpload",
            },
            f"LifecycleConfiguration.Rules[{i}]",
        )
        out: dict[str, Any] = {"Status": api["Status"], "Filter": {"Prefix": api.get("Prefix", "")}}
        if "ID" in api:
            out["ID"] = api["ID"]
        if "ExpirationInDays" in api:
            out["Expiration"] = {"Days": int(api["ExpirationInDays"])}
        if "AbortIncompleteMultipartUpload" in api:
            days = int(api["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
        rules.append(out)
    return "s3", "put_bucket_lifecycle_configuration", {
        "Bucket": bucket, "LifecycleConfiguration": {"Rules": rules},
    }


def _cors(bucket: str, value: dict[str, Any]) -> ApiCall:
    rules = [
        _pick(
            rule,
            {
                "Id": "ID",
                "AllowedMethods": "AllowedMethods",
                "AllowedOrigins": "AllowedOrigins",
                "AllowedHeaders": "AllowedHeaders",
                "ExposedHeaders": "ExposeHeaders",
                "MaxAge": "MaxAgeSeconds",
            },
            f"CorsConfiguration.CorsRules[{i}]",
        )
        for i, rule in enumerate(_pick(value, {"CorsRules": "CorsRules"}, "CorsConfiguration")["CorsRules"])
    ]
    return "s3", "put_bucket_cors", {"Bucket": bucket, "CORSConfiguration": {"CORSRules": rules}}


def _time_to_live(table: str, value: dict[str, Any]) -> ApiCall:
    spec = _pick(value, {"AttributeName": "AttributeName", "Enabled": "Enabled"}, "TimeToLiveSpecification")
    spec["Enabled"] = bool(spec["Enabled"])
    return "dynamodb", "update_time_to_live", {"TableName": table, "TimeToLiveSpecification": spec}


def _point_in_time_recovery(table: str, value: dict[str, Any]) -> ApiCall:
    spec = _pick(
        value,
        {"PointInTimeRecoveryEnabled": "PointInTimeRecoveryEnabled"},
        "PointInTimeRecoverySpecification",
    )
    spec["PointInTimeRecoveryEnabled"] = bool(spec["PointInTimeRecoveryEnabled"])
    return "dynamodb", "update_continuous_backups", {
        "TableName": table, "PointInTimeRecoverySpecification": spec,
    }


# (resource type, property) -> translator(physical id, literal value) -> ApiCall
MOTO_IGNORED: dict[tuple[str, str], Callable[[str, Any], ApiCall]] = {
    ("AWS::S3::Bucket", "PublicAccessBlockConfiguration"): _public_access_block,
    ("AWS::S3::Bucket", "LifecycleConfiguration"): _lifecycle,
    ("AWS::S3::Bucket", "CorsConfiguration"): _cors,
    ("AWS::DynamoDB::Table", "TimeToLiveSpecification"): _time_to_live,
    ("AWS::DynamoDB::Table", "PointInTimeRecoverySpecification"): _point_in_time_recovery,
}


def ignored_property_calls(template: dict[str, Any], physical_ids: dict[str, str],
                           parameters: Mapping[str, str] | None = None) -> list[ApiCall]:
    """The API calls that set every property moto's CloudFormation skips."""
    calls = []
    values = parameter_values(template, parameters or {})
    for logical_id, resource in template.get("Resources", {}).items():
        for prop, value in resource.get("Properties", {}).items():
            translate = MOTO_IGNORED.get((resource["Type"], prop))
            if translate is not None:
                literal = _literal(_resolve_parameters(value, values), f"{logical_id}.{prop}")
                calls.append(translate(physical_ids[logical_id], literal))
    return calls


def apply_ignored_properties(
    clients: Callable[[str], Any], template: dict[str, Any], physical_ids: dict[str, str],
    parameters: Mapping[str, str] | None = None,
) -> list[ApiCall]:
    """Everything moto's CloudFormation skips, the properties of MOTO_IGNORED and
    the resources of MOTO_MISSING: translate all first (refusing what cannot
    be), then make the calls."""
    calls = (ignored_property_calls(template, physical_ids, parameters)
             + missing_resource_calls(template, physical_ids, parameters))
    for service, operation, kwargs in calls:
        getattr(clients(service), operation)(**kwargs)
    return calls


# --- resources moto's CloudFormation does not create, made through the APIs ---------
# moto 5.2.1 has no CloudFormation model for AWS::CloudWatch::Alarm: it warns
# and skips the resource. Each one is replayed with put_metric_alarm, whose
# arguments carry the resource's property names.

_ALARM_PROPERTIES = (
    "AlarmName", "AlarmDescription", "ActionsEnabled", "AlarmActions", "OKActions",
    "InsufficientDataActions", "Namespace", "MetricName", "Dimensions", "Statistic",
    "ExtendedStatistic", "Period", "Unit", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
    "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile", "Metrics",
    "ThresholdMetricId",
)


def _alarm(value: dict[str, Any]) -> ApiCall:
    kwargs = _pick(value, {k: k for k in _ALARM_PROPERTIES}, "AWS::CloudWatch::Alarm")
    for name, cast in (("Threshold", float), ("Period", int), ("EvaluationPeriods", int),
                       ("DatapointsToAlarm", int)):
        if name in kwargs:
            kwargs[name] = cast(kwargs[name])
    return "cloudwatch", "put_metric_alarm", kwargs


# resource type -> translator(literal properties) -> ApiCall
MOTO_MISSING: dict[str, Callable[[dict[str, Any]], ApiCall]] = {
    "AWS::CloudWatch::Alarm": _alarm,
}


def _resolve(value: Any, parameters: Mapping[str, Any], resources: dict[str, Any],
             physical_ids: Mapping[str, str], where: str) -> Any:
    """Intrinsic functions replaced by what CloudFormation would give: a Ref to a
    parameter or to a created resource, Fn::Sub over those, and Fn::GetAtt of a
    queue's QueueName. Anything else is refused."""
    def ref(name: str) -> Any:
        if name in parameters:
            return parameters[name]
        if name in physical_ids:
            return physical_ids[name]
        raise UnsupportedPropertyError(f"{where}: cannot resolve a Ref to {name}")

    def get_att(name: str, attribute: str) -> str:
        if resources.get(name, {}).get("Type") == "AWS::SQS::Queue" and attribute == "QueueName":
            return ref(name).rsplit("/", 1)[-1]  # its physical id is the queue's URL
        raise UnsupportedPropertyError(f"{where}: local_cloud does not resolve Fn::GetAtt {name}.{attribute}")

    def sub(match: re.Match[str]) -> str:
        name, _, attribute = match.group(1).partition(".")
        return str(get_att(name, attribute) if attribute else ref(name))

    if isinstance(value, list):
        return [_resolve(v, parameters, resources, physical_ids, f"{where}[{i}]")
                for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return ref(value["Ref"])
    if set(value) == {"Fn::GetAtt"}:
        return get_att(*value["Fn::GetAtt"])
    if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{([^}!]+)\}", sub, value["Fn::Sub"])
    if any(k.startswith("Fn::") for k in value):
        raise UnsupportedPropertyError(f"{where} uses {value}; local_cloud does not resolve it")
    return {k: _resolve(v, parameters, resources, physical_ids, f"{where}.{k}") for k, v in value.items()}


class _ReplayedSkips(logging.Filter):
    """Drops moto's "No Moto CloudFormation support for <type>" for the types replayed here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == "No Moto CloudFormation support for %s" and record.args
                    and record.args[0] in MOTO_MISSING)


_REPLAYED_SKIPS = _ReplayedSkips()


def _quiet_moto_about_missing_resources() -> None:
    # moto logs and warns once per skipped resource (thirty-odd alarms): noise,
    # since each one is created here.
    logging.getLogger("moto").addFilter(_REPLAYED_SKIPS)
    for resource_type in MOTO_MISSING:
        warnings.filterwarnings("ignore", message=f"Tried to parse {re.escape(resource_type)} but",
                                category=UserWarning)


def missing_resource_calls(template: dict[str, Any], physical_ids: dict[str, str],
                           parameters: Mapping[str, str] | None = None) -> list[ApiCall]:
    """The API calls that create every resource moto's CloudFormation skips."""
    calls = []
    values = parameter_values(template, parameters or {})
    resources = template.get("Resources", {})
    for logical_id, resource in resources.items():
        translate = MOTO_MISSING.get(resource["Type"])
        if translate is None:
            continue
        if "Condition" in resource:
            raise UnsupportedPropertyError(f"{logical_id}: local_cloud does not evaluate Conditions")
        properties = _resolve(resource.get("Properties", {}), values, resources, physical_ids, logical_id)
        calls.append(translate(properties))
    return calls


# --- the deployer -------------------------------------------------------------------

@dataclass(frozen=True)
class StackOutputs:
    """The stack's Outputs, plus the environment the app reads them from."""

    stack_name: str
    values: dict[str, str]

    def __getitem__(self, key: str) -> str:
        return self.values[key]

    def app_environment(self) -> dict[str, str]:
        """The SLUICE_* variables chalicelib/settings.py reads (infra/stack_environment.py)."""
        return app_environment(self.values)


def deploy_stack(
    clients: Callable[[str], Any],
    stage: str = "local",
    template_path: Path = TEMPLATE_PATH,
    timeout: float = 60.0,
    parameters: Mapping[str, str] | None = None,
) -> StackOutputs:
    """create_stack, wait for CREATE_COMPLETE, patch moto's gaps, return the Outputs.

    ``clients`` is a function from service name to a boto3 client aimed at the
    embedded AWS (a parameter, so tests can aim it at any moto server).
    ``parameters`` are template parameters besides Stage; by default the ones
    the environment sets (PARAMETERS_FROM_ENV).
    """
    cfn = clients("cloudformation")
    name = stack_name_for(stage)
    body = template_path.read_text()
    _quiet_moto_about_missing_resources()
    given = {**(stage_parameters() if parameters is None else parameters), "Stage": stage}
    cfn.create_stack(
        StackName=name,
        TemplateBody=body,
        Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in given.items()],
    )
    stack = _wait_for_create(cfn, name, timeout)
    physical_ids = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=name)["StackResources"]
        if "LogicalResourceId" in r  # moto lists each resource it skipped as a bare entry
    }
    apply_ignored_properties(clients, load_template(template_path), physical_ids, given)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return StackOutputs(stack_name=name, values=outputs)


def _wait_for_create(cfn, name: str, timeout: float) -> dict[str, Any]:
    # boto3's waiter polls every 30 s; moto finishes in milliseconds.
    deadline = time.monotonic() + timeout
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            return stack
        if not status.endswith("IN_PROGRESS"):
            events = cfn.describe_stack_events(StackName=name)["StackEvents"]
            reasons = [
                f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
                for e in events
                if e.get("ResourceStatusReason")
            ]
            raise StackDeployError(f"stack {name} ended in {status}: {reasons or 'no reason given'}")
        if time.monotonic() > deadline:
            raise StackDeployError(f"stack {name} still {status} after {timeout:.0f} s")
        time.sleep(0.2)
