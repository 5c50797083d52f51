"""API keys in the jobs table.

    APIKEY#<sha256 of the key>  META   tenant, name, key_id, created_at, expires_at (TTL)

A presented key is one GetItem by its hash. A tenant's keys are listed
through gsi1 (`KEYS#<tenant>`, by creation time); revoking deletes by hash,
found from the key id through that list.
"""
from __future__ import annotations

from ..auth.keys import ApiKey
from .errors import service_errors


def _key(digest: str) -> dict:
    return {"PK": {"S": f"APIKEY#{digest}"}, "SK": {"S": "META"}}


class DynamoApiKeyStore:
    def __init__(self, client, table: str):
        self._db = client
        self._table = table

    @service_errors("DynamoDB")
    def put(self, digest: str, key: ApiKey) -> None:
        self._db.put_item(TableName=self._table, Item={
            **_key(digest), "digest": {"S": digest}, "key_id": {"S": key.key_id},
            "tenant": {"S": key.tenant}, "name": {"S": key.name},
            "created_at": {"N": str(key.created_at)}, "expires_at": {"N": str(key.expires_at)},
            "gsi1pk": {"S": f"KEYS#{key.tenant}"}, "gsi1sk": {"S": f"{key.created_at:012d}#{key.key_id}"},
        })

    @service_errors("DynamoDB")
    def get(self, digest: str) -> ApiKey | None:
        item = self._db.get_item(TableName=self._table, Key=_key(digest), ConsistentRead=False).get("Item")
        return _from_item(item) if item else None

    @service_errors("DynamoDB")
    def delete(self, key_id: str, tenant: str) -> bool:
        for item in self._items(tenant):
            if item["key_id"]["S"] == key_id:
                self._db.delete_item(TableName=self._table, Key=_key(item["digest"]["S"]))
                return True
        return False

    @service_errors("DynamoDB")
    def list(self, tenant: str) -> list[ApiKey]:
        return [_from_item(item) for item in self._items(tenant)]

    def _items(self, tenant: str) -> list[dict]:
        items, kwargs = [], dict(
            TableName=self._table, IndexName="gsi1", KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"KEYS#{tenant}"}})
        while True:
            resp = self._db.query(**kwargs)
            items += resp.get("Items", [])
            if "LastEvaluatedKey" not in resp:
                return items
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def _from_item(item: dict) -> ApiKey:
    return ApiKey(key_id=item["key_id"]["S"], tenant=item["tenant"]["S"], name=item["name"]["S"],
                  created_at=int(item["created_at"]["N"]), expires_at=int(item["expires_at"]["N"]))


class DynamoTicketStore:
    """WebSocket tickets in the jobs table (chalicelib/auth/tickets.py):

        TICKET#<sha256 of the ticket>  META   key_digest, expires_at (TTL)

    Taking one is a single conditional DeleteItem that returns what it
    deleted: of two connects with one ticket, one gets the key."""

    def __init__(self, client, table: str):
        self._db = client
        self._table = table

    @service_errors("DynamoDB")
    def put(self, digest: str, key_digest: str, expires_at: int) -> None:
        self._db.put_item(TableName=self._table, Item={
            "PK": {"S": f"TICKET#{digest}"}, "SK": {"S": "META"},
            "key_digest": {"S": key_digest}, "expires_at": {"N": str(expires_at)}})

    @service_errors("DynamoDB")
    def take(self, digest: str, now: int) -> str | None:
        try:
            old = self._db.delete_item(
                TableName=self._table, Key={"PK": {"S": f"TICKET#{digest}"}, "SK": {"S": "META"}},
                ConditionExpression="expires_at > :now", ExpressionAttributeValues={":now": {"N": str(now)}},
                ReturnValues="ALL_OLD")
        except self._db.exceptions.ConditionalCheckFailedException:
            return None  # none, spent, or expired (TTL deletes lazily)
        return old["Attributes"]["key_digest"]["S"]
