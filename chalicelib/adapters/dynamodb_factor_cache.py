"""One job's factor answers in the jobs table (PK=JOB#<id>, SK=FACTOR#<key>).

The items live beside the job and expire with it. Writes are unconditional:
two chunks asking the same question at once store the same answer.
"""
from __future__ import annotations

from ..carbon.factor_cache import Answer, answer_from_json, answer_to_json
from .errors import service_errors


class DynamoFactorCache:
    def __init__(self, client, table: str, job_id: str, ttl_epoch: int):
        self._db = client
        self._table = table
        self._job_id = job_id
        self._ttl_epoch = ttl_epoch

    def _key(self, key: str) -> dict:
        return {"PK": {"S": f"JOB#{self._job_id}"}, "SK": {"S": f"FACTOR#{key}"}}

    @service_errors("DynamoDB")
    def get(self, key: str) -> Answer | None:
        # An eventually consistent read: a miss only costs one more request.
        item = self._db.get_item(TableName=self._table, Key=self._key(key)).get("Item")
        return answer_from_json(item["answer"]["S"]) if item else None

    @service_errors("DynamoDB")
    def put(self, key: str, answer: Answer) -> None:
        item = {**self._key(key), "answer": {"S": answer_to_json(answer)},
                "expires_at": {"N": str(self._ttl_epoch)}}
        self._db.put_item(TableName=self._table, Item=item)
