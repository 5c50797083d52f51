"""infra/template.yaml deployed by local_cloud's deployer into moto's real server.

The settings asserted here are the ones Sluice's behaviour depends on (redrive to
a DLQ, visibility timeouts, TTL, the stream, the GSI), including those moto's
CloudFormation ignores and local_cloud applies itself.
"""
from __future__ import annotations

import json
import uuid

import pytest

from local_cloud.aws_server import AwsClients, EmbeddedAws
from local_cloud.stack import (
    UnsupportedPropertyError,
    apply_ignored_properties,
    deploy_stack,
    load_template,
)

OUTPUT_KEYS = {
    "BucketName", "TableName", "WorkQueueName", "AggregateQueueName", "WorkQueueUrl",
    "AggregateQueueUrl", "WorkDLQName", "AggregateDLQName", "TableStreamArn",
    "ResultsQueueName", "ResultsQueueUrl", "ResultsDLQName", "CallbackQueueName", "CallbackDLQName",
    "WorkFilesExpireDays", "UploadFilesExpireDays", "ResultFilesExpireDays", "AlertsTopicArn",
}


@pytest.fixture(scope="module")
def clients():
    aws = EmbeddedAws(port=0)  # a free loopback port
    url = aws.start()
    try:
        yield AwsClients(url)
    finally:
        aws.stop()


@pytest.fixture(scope="module")
def deployed(clients):
    # moto's state is per process: a unique stage keeps this stack apart from others.
    stage = f"t{uuid.uuid4().hex[:8]}"
    return stage, deploy_stack(clients, stage=stage)


def test_outputs_name_every_resource_from_the_stage(deployed):
    stage, outputs = deployed
    assert set(outputs.values) == OUTPUT_KEYS
    assert outputs["BucketName"] == f"sluice-{stage}-data"
    assert outputs["TableName"] == f"sluice-{stage}-jobs"
    assert outputs["WorkQueueName"] == f"sluice-{stage}-work"
    assert outputs["AggregateQueueName"] == f"sluice-{stage}-aggregate"
    assert outputs["WorkDLQName"] == f"sluice-{stage}-work-dlq"
    assert outputs["AggregateDLQName"] == f"sluice-{stage}-aggregate-dlq"
    assert outputs["WorkQueueUrl"].endswith(f"/sluice-{stage}-work")
    assert f":table/sluice-{stage}-jobs/stream/" in outputs["TableStreamArn"]
    assert outputs.app_environment() == {
        "SLUICE_BUCKET": f"sluice-{stage}-data",
        "SLUICE_TABLE": f"sluice-{stage}-jobs",
        "SLUICE_WORK_QUEUE": f"sluice-{stage}-work",
        "SLUICE_AGGREGATE_QUEUE": f"sluice-{stage}-aggregate",
        "SLUICE_TABLE_STREAM_ARN": outputs["TableStreamArn"],
        "SLUICE_RESULTS_QUEUE": f"sluice-{stage}-results",
        "SLUICE_CALLBACK_QUEUE": f"sluice-{stage}-callbacks",
        "SLUICE_CALLBACK_DLQ": f"sluice-{stage}-callbacks-dlq",
        "SLUICE_WORK_DLQ": f"sluice-{stage}-work-dlq",
        "SLUICE_AGGREGATE_DLQ": f"sluice-{stage}-aggregate-dlq",
        "SLUICE_WORK_FILES_DAYS": "7",
        "SLUICE_UPLOAD_FILES_DAYS": "14",
        "SLUICE_RESULT_FILES_DAYS": "14",
    }


@pytest.mark.parametrize(
    "queue, dlq, visibility",
    [("WorkQueueName", "WorkDLQName", "360"), ("AggregateQueueName", "AggregateDLQName", "5400"),
     ("CallbackQueueName", "CallbackDLQName", "360")],
)
def test_queues_redrive_to_their_dlq_after_five_receives(clients, deployed, queue, dlq, visibility):
    _, outputs = deployed
    sqs = clients("sqs")
    attributes = _queue_attributes(sqs, outputs[queue])
    dlq_arn = _queue_attributes(sqs, outputs[dlq])["QueueArn"]
    assert attributes["VisibilityTimeout"] == visibility
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": 5,
    }


def test_table_keys_index_stream_ttl_and_recovery(clients, deployed):
    _, outputs = deployed
    ddb = clients("dynamodb")
    table = ddb.describe_table(TableName=outputs["TableName"])["Table"]
    assert table["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    gsi, open_jobs = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "gsi1"
    assert gsi["KeySchema"] == [
        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
    ]
    assert gsi["Projection"] == {"ProjectionType": "ALL"}
    # The sweeper's index of unfinished jobs: keys only, so counters never write it.
    assert open_jobs["IndexName"] == "open_jobs"
    assert open_jobs["KeySchema"] == [
        {"AttributeName": "open_pk", "KeyType": "HASH"},
        {"AttributeName": "open_sk", "KeyType": "RANGE"},
    ]
    assert open_jobs["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert table["LatestStreamArn"] == outputs["TableStreamArn"]

    ttl = ddb.describe_time_to_live(TableName=outputs["TableName"])["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    backups = ddb.describe_continuous_backups(TableName=outputs["TableName"])
    recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"


def test_bucket_private_encrypted_expiring_work_and_open_to_post(clients, deployed):
    _, outputs = deployed
    s3 = clients("s3")
    bucket = outputs["BucketName"]
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    (encryption,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert {r["Status"] for r in rules} == {"Enabled"}
    assert {r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in rules} == {
        "work/": 7, "uploads/": 14, "results/": 14, "processed/": 14}

    cors = {rule["ID"]: rule for rule in s3.get_bucket_cors(Bucket=bucket)["CORSRules"]}
    assert cors["presigned-post-upload"]["AllowedMethods"] == ["POST"]
    assert cors["presigned-post-upload"]["AllowedOrigins"] == ["*"]


def test_the_stage_sets_the_lifecycle_days_through_the_template_parameters(clients):
    outputs = deploy_stack(clients, stage=f"t{uuid.uuid4().hex[:8]}",
                           parameters={"WorkFilesExpireDays": "2", "ResultFilesExpireDays": "30"})
    rules = clients("s3").get_bucket_lifecycle_configuration(Bucket=outputs["BucketName"])["Rules"]
    assert {r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in rules} == {
        "work/": 2, "uploads/": 14, "results/": 30, "processed/": 30}
    assert outputs.app_environment()["SLUICE_WORK_FILES_DAYS"] == "2"


def test_a_property_local_cloud_cannot_translate_is_refused_not_dropped():
    template = load_template()
    bucket = template["Resources"]["DataBucket"]["Properties"]
    bucket["LifecycleConfiguration"]["Rules"][0]["Transitions"] = [
        {"StorageClass": "GLACIER", "TransitionInDays": 30}
    ]
    with pytest.raises(UnsupportedPropertyError, match="Transitions"):
        apply_ignored_properties(_no_clients, template, {"DataBucket": "b", "JobsTable": "t"})


def test_an_intrinsic_function_in_an_applied_property_is_refused():
    template = load_template()
    table = template["Resources"]["JobsTable"]["Properties"]
    # A Ref to a parameter is resolved to its value; anything else cannot be replayed.
    table["TimeToLiveSpecification"]["AttributeName"] = {"Fn::GetAtt": ["DataBucket", "Arn"]}
    with pytest.raises(UnsupportedPropertyError, match="literal"):
        apply_ignored_properties(_no_clients, template, {"DataBucket": "b", "JobsTable": "t"})


def test_template_short_form_tags_load_as_intrinsic_functions():
    resources = load_template()["Resources"]
    assert resources["DataBucket"]["Properties"]["BucketName"] == {"Fn::Sub": "sluice-${Stage}-data"}
    assert resources["WorkQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["WorkDLQ", "Arn"]
    }


def _queue_attributes(sqs, name: str) -> dict[str, str]:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def _no_clients(service: str):
    raise AssertionError(f"no AWS call expected, got one for {service}")


def test_a_restarted_embedded_aws_starts_empty():
    # moto's state lives in this process; stop() must not leave the stack behind.
    for _ in range(2):
        aws = EmbeddedAws(port=0)
        try:
            outputs = deploy_stack(AwsClients(aws.start()), stage="restart")
            assert outputs["BucketName"] == "sluice-restart-data"
        finally:
            aws.stop()
