"""The IAM policy of a stage's Lambda functions, and a small evaluator for it.

    python -m infra.policy dev          # writes .chalice/policy-dev.json
    python -m infra.policy prod --region eu-west-1 --account 123456789012

A stage's functions get exactly this (`"autogen_policy": false` with
`"iam_policy_file": "policy-<stage>.json"` in .chalice/config.json): each
action named, on the stage's own resources only (sluice-<stage>-*). One
policy serves all of the stage's functions (Chalice gives each its own role
with it): the e2e suite proves what the app as a whole calls, which cannot be
told apart per function locally, where every handler shares one sandbox pool.
tests/e2e/test_least_privilege.py records every AWS call the app makes over
the e2e suite and fails on a call this policy does not allow, and on a grant
nothing used that is not on its list of grants AWS uses on the role's behalf.

The evaluator reads what this module writes: Allow and Deny statements with
Action and Resource (wildcards `*` and `?`; actions compared without regard
to case, resources with). It refuses NotAction, NotResource and Condition
rather than answer wrongly.
"""
from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# Chalice's default API Gateway stage (the WebSocket API's too).
DEFAULT_API_STAGE = "api"


def policy_for(stage: str, api_stage: str = DEFAULT_API_STAGE, region: str = "*", account: str = "*") -> dict:
    """The policy of stage `stage`, whose API Gateway stage is `api_stage`."""
    bucket = f"arn:aws:s3:::sluice-{stage}-data"
    table = f"arn:aws:dynamodb:{region}:{account}:table/sluice-{stage}-jobs"

    def queues(*names: str) -> list[str]:
        return [f"arn:aws:sqs:{region}:{account}:sluice-{stage}-{name}" for name in names]

    def files(*folders: str) -> list[str]:
        return [f"{bucket}/{folder}/*" for folder in folders]

    log_groups = [f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/sluice-{stage}{suffix}"
                  for suffix in ("", "-*")]
    statements = [
        # Uploads are read by the dispatcher, chunk and partial files by
        # workers and the aggregator, results by the API (GET and HEAD).
        ("ReadJobFiles", ["s3:GetObject"], files("uploads", "work", "results")),
        # The API stores raw uploads and presigns the POST of large ones
        # (S3 authorises a presigned request as its signer's).
        ("WriteJobFiles", ["s3:PutObject"], files("uploads", "work", "results", "processed")),
        # Cancelling a job removes its work files.
        ("DeleteWorkFiles", ["s3:DeleteObject"], files("work")),
        # Listing the work files to remove; it also makes S3 answer 404, not
        # 403, for a missing object, which the app reports as deleted.
        ("ListJobFiles", ["s3:ListBucket"], [bucket]),
        # Transactions need the actions of their items (PutItem, UpdateItem).
        ("JobRecords", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                        "dynamodb:DeleteItem", "dynamodb:Query"], [table]),
        # gsi1: a tenant's jobs; open_jobs: the sweeper's unfinished jobs.
        ("JobIndexes", ["dynamodb:Query"], [f"{table}/index/gsi1", f"{table}/index/open_jobs"]),
        ("SendMessages", ["sqs:GetQueueUrl", "sqs:SendMessage"],
         queues("work", "aggregate", "results", "callbacks", "callbacks-dlq")),
        # Lambda's event source mappings poll with the functions' role.
        ("QueueEventSources", ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
         queues("work", "aggregate", "work-dlq", "aggregate-dlq", "callbacks")),
        ("TableStreamEventSource",
         [f"dynamodb:{a}" for a in ("DescribeStream", "GetRecords", "GetShardIterator", "ListStreams")],
         [f"{table}/stream/*"]),
        # Live progress to WebSocket clients (any API id: it is made by the deploy).
        ("LivePushes", ["execute-api:ManageConnections"],
         [f"arn:aws:execute-api:{region}:{account}:*/{api_stage}/POST/@connections/*"]),
        # The pages processor's OCR on AWS; Textract has no resource to name.
        ("PageText", ["textract:DetectDocumentText"], ["*"]),
        ("FunctionLogs", ["logs:CreateLogGroup"], log_groups),
        ("FunctionLogStreams", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{g}:*" for g in log_groups]),
        # Active tracing ("xray": true); X-Ray has no resource to name.
        ("Tracing", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]),
    ]
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
        for sid, actions, resources in statements]}


def policy_file(stage: str, project_dir: Path = REPO_ROOT) -> Path:
    return project_dir / ".chalice" / f"policy-{stage}.json"


def api_stage_of(stage: str, project_dir: Path = REPO_ROOT) -> str:
    """The stage's api_gateway_stage in .chalice/config.json (Chalice's default: "api")."""
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    return (config.get("stages", {}).get(stage, {}).get("api_gateway_stage")
            or config.get("api_gateway_stage") or DEFAULT_API_STAGE)


def render(policy: dict) -> str:
    return json.dumps(policy, indent=2) + "\n"


def write_policy(stage: str, project_dir: Path = REPO_ROOT, region: str = "*", account: str = "*") -> Path:
    """Write .chalice/policy-<stage>.json; the stage names it as its iam_policy_file."""
    path = policy_file(stage, project_dir)
    path.write_text(render(policy_for(stage, api_stage_of(stage, project_dir), region, account)))
    return path


# -- evaluating -----------------------------------------------------------------

class UnsupportedPolicyError(ValueError):
    """The policy uses an element the evaluator does not read."""


@dataclass(frozen=True)
class Grant:
    """One action pattern on one resource pattern of an Allow statement."""

    sid: str
    action: str
    resource: str

    def covers(self, action: str, resource: str) -> bool:
        return _glob(self.action, ignore_case=True).fullmatch(action) is not None and \
            _glob(self.resource, ignore_case=False).fullmatch(resource) is not None


def _glob(pattern: str, ignore_case: bool) -> re.Pattern:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _statements(policy: dict) -> list[dict[str, Any]]:
    statements = policy["Statement"]
    statements = statements if isinstance(statements, list) else [statements]
    for statement in statements:
        unread = {"NotAction", "NotResource", "Condition", "Principal", "NotPrincipal"} & statement.keys()
        if unread:
            raise UnsupportedPolicyError(f"statement {statement.get('Sid', '?')} uses {sorted(unread)}")
    return statements


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _grants(statement: dict) -> list[Grant]:
    return [Grant(statement.get("Sid", ""), action, resource)
            for action in _as_list(statement["Action"]) for resource in _as_list(statement["Resource"])]


def grants(policy: dict) -> list[Grant]:
    """Every (action, resource) pair the policy's Allow statements name."""
    return [g for s in _statements(policy) if s["Effect"] == "Allow" for g in _grants(s)]


def allows(policy: dict, action: str, resource: str) -> bool:
    """IAM's answer for an identity policy alone: an explicit Deny wins,
    else some Allow must cover the action on the resource."""
    allowed = False
    for statement in _statements(policy):
        if any(g.covers(action, resource) for g in _grants(statement)):
            if statement["Effect"] == "Deny":
                return False
            allowed = True
    return allowed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write .chalice/policy-<stage>.json.")
    parser.add_argument("stage")
    parser.add_argument("--region", default="*", help="the stage's region (default: any)")
    parser.add_argument("--account", default="*", help="the stage's account id (default: any)")
    args = parser.parse_args(argv)
    print(write_policy(args.stage, region=args.region, account=args.account))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
