"""WebSocket connections and job subscriptions in the jobs table.

    CONN#<connection id>  META            who connected, the jobs it follows (a set)
    JOB#<job id>          SUB#<conn id>   one item per follower, beside the job

Followers of a job are one Query on the job's own partition; a disconnect
reads the connection's set of jobs to delete its SUB items. Both carry
expires_at, so connections API Gateway dropped without a $disconnect vanish.
"""
from __future__ import annotations

from typing import Any

from ..jobs.model import utc_now
from .errors import service_errors


def _conn_key(connection_id: str) -> dict:
    return {"PK": {"S": f"CONN#{connection_id}"}, "SK": {"S": "META"}}


def _sub_key(job_id: str, connection_id: str) -> dict:
    return {"PK": {"S": f"JOB#{job_id}"}, "SK": {"S": f"SUB#{connection_id}"}}


class DynamoConnectionStore:
    def __init__(self, client, table: str):
        self._db = client
        self._table = table

    @service_errors("DynamoDB")
    def add(self, connection_id: str, info: dict[str, Any], ttl_epoch: int) -> None:
        item = {**_conn_key(connection_id), "connection_id": {"S": connection_id},
                "connected_at": {"S": utc_now()}, "expires_at": {"N": str(ttl_epoch)}}
        item.update({k: {"S": str(v)} for k, v in info.items()})
        self._db.put_item(TableName=self._table, Item=item)

    @service_errors("DynamoDB")
    def get(self, connection_id: str) -> dict[str, str] | None:
        item = self._db.get_item(TableName=self._table, Key=_conn_key(connection_id)).get("Item")
        if item is None:
            return None
        return {k: v["S"] for k, v in item.items() if "S" in v and k not in ("PK", "SK")}

    @service_errors("DynamoDB")
    def remove(self, connection_id: str) -> list[str]:
        resp = self._db.delete_item(TableName=self._table, Key=_conn_key(connection_id),
                                    ReturnValues="ALL_OLD")
        return sorted(resp.get("Attributes", {}).get("jobs", {}).get("SS", []))

    @service_errors("DynamoDB")
    def subscribe(self, job_id: str, connection_id: str, ttl_epoch: int) -> None:
        self._db.put_item(TableName=self._table, Item={
            **_sub_key(job_id, connection_id), "connection_id": {"S": connection_id},
            "expires_at": {"N": str(ttl_epoch)}})
        self._db.update_item(
            TableName=self._table, Key=_conn_key(connection_id),
            UpdateExpression="ADD jobs :job SET expires_at = if_not_exists(expires_at, :ttl)",
            ExpressionAttributeValues={":job": {"SS": [job_id]}, ":ttl": {"N": str(ttl_epoch)}})

    @service_errors("DynamoDB")
    def unsubscribe(self, job_id: str, connection_id: str) -> None:
        self._db.delete_item(TableName=self._table, Key=_sub_key(job_id, connection_id))

    @service_errors("DynamoDB")
    def subscribers(self, job_id: str) -> list[str]:
        found: list[str] = []
        kwargs: dict[str, Any] = dict(
            TableName=self._table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :sub)",
            ExpressionAttributeValues={":pk": {"S": f"JOB#{job_id}"}, ":sub": {"S": "SUB#"}},
            ProjectionExpression="connection_id",
        )
        while True:
            resp = self._db.query(**kwargs)
            found += [item["connection_id"]["S"] for item in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return found
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
