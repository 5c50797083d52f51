"""Rate-limit windows in the jobs table (PK=RATE#<key>, SK=WINDOW#<start>).

One conditional UpdateItem per call: DynamoDB applies the condition and the
increment atomically, so however many Lambdas hit the same window at once, no
more than `limit` of them are told yes.
"""
from __future__ import annotations

from .errors import service_errors


def rate_key(key: str, window: int) -> dict:
    return {"PK": {"S": f"RATE#{key}"}, "SK": {"S": f"WINDOW#{window}"}}


class DynamoWindowCounter:
    def __init__(self, client, table: str):
        self._db = client
        self._table = table

    # Throttling survives boto3's own retries only when the table is
    # overloaded: the caller's event is worth delivering again later.
    @service_errors("DynamoDB")
    def hit(self, key: str, window: int, limit: int, ttl_epoch: int) -> int | None:
        if limit < 1:
            return None  # the condition below would let the first hit through
        try:
            resp = self._db.update_item(
                TableName=self._table, Key=rate_key(key, window),
                UpdateExpression="SET expires_at = :expires ADD hits :one",
                ConditionExpression="attribute_not_exists(hits) OR hits < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"}, ":limit": {"N": str(limit)}, ":expires": {"N": str(ttl_epoch)},
                },
                ReturnValues="UPDATED_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return None
        return int(resp["Attributes"]["hits"]["N"])
