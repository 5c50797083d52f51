"""local_cloud's fix to moto's transactions: all or nothing as before, the
stream silent for a cancelled transaction, and no table copied whole."""
from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends

from local_cloud import moto_fixes

TABLE = "fixes"


@pytest.fixture
def db(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    moto_fixes.apply()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                       {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                                  {"AttributeName": "SK", "AttributeType": "S"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        for sk in ("A", "B"):
            client.put_item(TableName=TABLE, Item={"PK": {"S": "p"}, "SK": {"S": sk}, "n": {"N": "1"}})
        yield client


def _table():
    return dynamodb_backends["123456789012"]["us-east-1"].tables[TABLE]


def _key(sk):
    return {"PK": {"S": "p"}, "SK": {"S": sk}}


def _items(client):
    found = client.query(TableName=TABLE, KeyConditionExpression="PK = :p",
                         ExpressionAttributeValues={":p": {"S": "p"}})["Items"]
    return {i["SK"]["S"]: int(i["n"]["N"]) for i in found}


def _writes(fail: bool):
    return [
        {"Update": {"TableName": TABLE, "Key": _key("A"), "UpdateExpression": "SET n = n + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Put": {"TableName": TABLE, "Item": {**_key("C"), "n": {"N": "7"}}}},
        {"Delete": {"TableName": TABLE, "Key": _key("B")}},
        {"ConditionCheck": {"TableName": TABLE, "Key": _key("D"), "ConditionExpression":
                            "attribute_exists(PK)" if fail else "attribute_not_exists(PK)"}},
    ]


def test_a_cancelled_transaction_changes_nothing_and_streams_nothing(db):
    table, records = _table(), len(_table().stream_shard.items)
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        db.transact_write_items(TransactItems=_writes(fail=True))
    assert _items(db) == {"A": 1, "B": 1}
    assert len(table.stream_shard.items) == records
    assert _table() is table  # restored in place, never replaced by a whole copy


def test_a_transaction_moto_refuses_midway_is_rolled_back_too(db):
    twice = [_writes(fail=False)[0], {"Delete": {"TableName": TABLE, "Key": _key("A")}}]
    with pytest.raises(ClientError, match="ValidationException"):
        db.transact_write_items(TransactItems=twice)
    assert _items(db) == {"A": 1, "B": 1}


def test_a_committed_transaction_applies_every_write_and_streams_each(db):
    records = len(_table().stream_shard.items)
    db.transact_write_items(TransactItems=_writes(fail=False))
    assert _items(db) == {"A": 2, "C": 7}
    assert len(_table().stream_shard.items) == records + 3
