"""infra/policy.py: each stage's IAM policy, written from one template, and the
evaluator tests/e2e/test_least_privilege.py judges the app's calls with."""
from __future__ import annotations

import json

import pytest

from infra.policy import (
    REPO_ROOT,
    UnsupportedPolicyError,
    allows,
    api_stage_of,
    grants,
    policy_file,
    policy_for,
    render,
    write_policy,
)

# Chalice attaches the file as an inline role policy: at most 10,240
# characters, whitespace not counted.
INLINE_POLICY_LIMIT = 10_240
# Services whose actions name no resource: IAM wants "*" for them.
NO_RESOURCE_TYPES = {"textract", "xray"}


def _policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(action, resource) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def test_actions_match_without_case_and_with_wildcards():
    policy = _policy(_allow(["s3:Get*", "sqs:SendMessage"], "*"))
    assert allows(policy, "s3:GetObject", "arn:aws:s3:::b/k")
    assert allows(policy, "S3:getobject", "arn:aws:s3:::b/k")
    assert allows(policy, "sqs:sendmessage", "arn:aws:sqs:us-east-1:1:q")
    assert not allows(policy, "s3:PutObject", "arn:aws:s3:::b/k")
    assert not allows(policy, "sqs:SendMessageBatch", "arn:aws:sqs:us-east-1:1:q")


def test_resources_match_with_case_and_globs_only():
    policy = _policy(_allow("s3:GetObject", ["arn:aws:s3:::sluice-dev-data/work/*",
                                             "arn:aws:s3:::sluice-dev-data/a?c.txt"]))
    assert allows(policy, "s3:GetObject", "arn:aws:s3:::sluice-dev-data/work/j/chunks/000001.csv")
    assert allows(policy, "s3:GetObject", "arn:aws:s3:::sluice-dev-data/abc.txt")
    assert not allows(policy, "s3:GetObject", "arn:aws:s3:::sluice-dev-data/Work/x")
    assert not allows(policy, "s3:GetObject", "arn:aws:s3:::sluice-dev-data/uploads/x")
    assert not allows(policy, "s3:GetObject", "arn:aws:s3:::sluice-dev-data/abbc.txt")
    # "." and other regex characters are themselves, not patterns.
    assert not allows(policy, "s3:GetObject", "arn:aws:s3:::sluice-dev-data/abcxtxt")
    assert not allows(policy, "s3:GetObject", "arn:aws:s3:::sluice-dev-data-other/work/x")


def test_an_explicit_deny_wins():
    policy = _policy(_allow("s3:*", "*"), {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"})
    assert allows(policy, "s3:GetObject", "arn:aws:s3:::b/k")
    assert not allows(policy, "s3:DeleteObject", "arn:aws:s3:::b/k")


@pytest.mark.parametrize("element", ["NotAction", "NotResource", "Condition"])
def test_what_the_evaluator_does_not_read_is_refused(element):
    with pytest.raises(UnsupportedPolicyError, match=element):
        allows(_policy({**_allow("s3:GetObject", "*"), element: {}}), "s3:GetObject", "*")


def test_grants_lists_each_action_on_each_resource():
    policy = _policy({"Sid": "A", **_allow(["s3:GetObject", "s3:PutObject"], ["arn:1", "arn:2"])},
                     {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:1"})
    assert [(g.sid, g.action, g.resource) for g in grants(policy)] == [
        ("A", "s3:GetObject", "arn:1"), ("A", "s3:GetObject", "arn:2"),
        ("A", "s3:PutObject", "arn:1"), ("A", "s3:PutObject", "arn:2")]


def test_the_dev_policy_file_is_the_template_rendered_for_dev():
    assert policy_file("dev").read_text() == render(policy_for("dev", api_stage_of("dev"))), (
        "regenerate it: python -m infra.policy dev")


def test_every_stage_without_chalices_policy_names_its_own_file():
    stages = json.loads((REPO_ROOT / ".chalice" / "config.json").read_text())["stages"]
    checked = [name for name, stage in stages.items() if stage.get("autogen_policy") is False]
    assert "dev" in checked
    for name in checked:
        # Chalice's default file name when iam_policy_file is not set is the same.
        assert stages[name].get("iam_policy_file", f"policy-{name}.json") == f"policy-{name}.json"
        assert json.loads(policy_file(name).read_text()) == policy_for(name, api_stage_of(name))


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_a_stage_is_granted_its_own_resources_only(stage):
    for grant in grants(policy_for(stage)):
        service = grant.action.split(":")[0]
        if grant.resource == "*":
            assert service in NO_RESOURCE_TYPES, grant
        elif service == "execute-api":
            assert grant.resource.endswith("/api/POST/@connections/*"), grant
        else:
            assert f"sluice-{stage}" in grant.resource, grant
        assert "*" not in grant.action, grant


def test_a_policy_for_another_stage_is_written_beside_dev(tmp_path):
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(
        {"stages": {"prod": {"api_gateway_stage": "v1"}}}))
    path = write_policy("prod", tmp_path, region="eu-west-1", account="123456789012")
    assert path == tmp_path / ".chalice" / "policy-prod.json"
    written = json.loads(path.read_text())
    assert written == policy_for("prod", "v1", "eu-west-1", "123456789012")
    assert allows(written, "sqs:SendMessage", "arn:aws:sqs:eu-west-1:123456789012:sluice-prod-work")
    assert not allows(written, "sqs:SendMessage", "arn:aws:sqs:eu-west-1:210987654321:sluice-prod-work")
    assert allows(written, "execute-api:ManageConnections",
                  "arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/POST/@connections/Xyz=")


def test_the_policy_fits_in_an_inline_role_policy():
    compact = json.dumps(policy_for("dev"), separators=(",", ":"))
    assert len(compact) < INLINE_POLICY_LIMIT
