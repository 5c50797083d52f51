"""Job and chunk state in one DynamoDB table (PK=JOB#<id>, SK=META | CHUNK#<n>)."""
from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from ..jobs.model import (
    ChunkStatus,
    Job,
    JobNotFoundError,
    JobStatus,
    TransitionRejectedError,
    utc_now,
)

_ser = TypeSerializer()
_deser = TypeDeserializer()

_JOB_FIELDS = {
    "chunks_total", "chunks_done", "chunks_failed", "rows_done", "finished_at",
    "error", "result_key", "outputs", "totals", "items_total", "items_label",
}


def to_item_value(value: Any) -> dict:
    # DynamoDB wants Decimal, never float; a JSON round trip converts nested values.
    if isinstance(value, (dict, list, float)):
        value = json.loads(json.dumps(value), parse_float=Decimal)
    return _ser.serialize(value)


def from_item_value(value: dict) -> Any:
    return _plain(_deser.deserialize(value))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _placeholders(names: dict, values: dict, prefix: str, items: dict[str, dict],
                  template: str) -> list[str]:
    """Expression parts for `items` (attribute name -> typed value), with
    their #name and :value placeholders added to `names` and `values`."""
    parts = []
    for i, (name, value) in enumerate(items.items()):
        names[f"#{prefix}{i}"] = name
        values[f":{prefix}{i}"] = value
        parts.append(template.format(n=f"#{prefix}{i}", v=f":{prefix}{i}"))
    return parts


def _status_in(values: dict, prefix: str, statuses: Iterable[str]) -> str:
    """`#status IN (...)` for the given statuses, their values added."""
    marks = []
    for i, status in enumerate(statuses):
        values[f":{prefix}{i}"] = {"S": status}
        marks.append(f":{prefix}{i}")
    return f"#status IN ({', '.join(marks)})"


def _key(job_id: str, sort_key: str) -> dict:
    return {"PK": {"S": f"JOB#{job_id}"}, "SK": {"S": sort_key}}


def chunk_sort_key(index: int) -> str:
    return f"CHUNK#{index:06d}"


class DynamoJobStore:
    def __init__(self, client, table: str):
        self._db = client
        self._table = table

    # -- jobs -------------------------------------------------------------

    def create_job(self, job: Job, ttl_epoch: int) -> bool:
        item = {
            **_key(job.job_id, "META"),
            "gsi1pk": {"S": f"TENANT#{job.tenant}"},
            "gsi1sk": {"S": f"{job.created_at}#{job.job_id}"},
            "job_id": {"S": job.job_id},
            "status": {"S": job.status.value},
            "processor": {"S": job.processor},
            "filename": {"S": job.filename},
            "source_key": {"S": job.source_key},
            "options_json": {"S": json.dumps(job.options)},
            "tenant": {"S": job.tenant},
            "chunks_done": {"N": "0"},
            "chunks_failed": {"N": "0"},
            "rows_done": {"N": "0"},
            "created_at": {"S": job.created_at},
            "updated_at": {"S": job.updated_at},
            "expires_at": {"N": str(ttl_epoch)},
        }
        if job.callback_url:
            item["callback_url"] = {"S": job.callback_url}
        try:
            self._db.put_item(
                TableName=self._table, Item=item,
                ConditionExpression="attribute_not_exists(PK)",
            )
            return True
        except self._db.exceptions.ConditionalCheckFailedException:
            return False

    def get_job(self, job_id: str) -> Job:
        resp = self._db.get_item(
            TableName=self._table, Key=_key(job_id, "META"), ConsistentRead=True
        )
        if "Item" not in resp:
            raise JobNotFoundError(f"no job with id {job_id!r}")
        return _job_from_item(resp["Item"])

    def list_jobs(self, limit: int = 50, tenant: str = "default") -> list[Job]:
        resp = self._db.query(
            TableName=self._table, IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"TENANT#{tenant}"}},
            ScanIndexForward=False, Limit=limit,
        )
        return [_job_from_item(item) for item in resp.get("Items", [])]

    def transition(self, job_id: str, from_statuses: Iterable[str], to_status: str,
                   **fields: Any) -> Job:
        unknown = set(fields) - _JOB_FIELDS
        if unknown:
            raise ValueError(f"cannot set job fields {sorted(unknown)}")
        names = {"#status": "status", "#updated": "updated_at"}
        values = {":to": {"S": to_status}, ":now": {"S": utc_now()}}
        sets = ["#status = :to", "#updated = :now"]
        typed = {k: to_item_value(v) for k, v in fields.items()}
        sets += _placeholders(names, values, "f", typed, "{n} = {v}")
        allowed = _status_in(values, "from", from_statuses)
        try:
            resp = self._db.update_item(
                TableName=self._table, Key=_key(job_id, "META"),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=f"attribute_exists(PK) AND {allowed}",
                ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            current = self.get_job(job_id)  # raises JobNotFoundError when missing
            raise TransitionRejectedError(
                f"job {job_id} is {current.status.value}, not one of {sorted(from_statuses)}"
            ) from None
        return _job_from_item(resp["Attributes"])

    # -- chunks -----------------------------------------------------------

    def put_chunks(self, job_id: str, chunks: list[dict[str, Any]], ttl_epoch: int) -> None:
        # Chunks are written with a condition so a re-run dispatch never resets
        # a chunk that a worker has already settled.
        for chunk in chunks:
            item = {**_key(job_id, chunk_sort_key(chunk["index"]))}
            for name, value in chunk.items():
                item[name] = to_item_value(value)
            item["status"] = {"S": ChunkStatus.PENDING.value}
            item["expires_at"] = {"N": str(ttl_epoch)}
            try:
                self._db.put_item(
                    TableName=self._table, Item=item,
                    ConditionExpression="attribute_not_exists(PK)",
                )
            except self._db.exceptions.ConditionalCheckFailedException:
                pass

    def complete_chunk(self, job_id: str, index: int, rows: int, result_key: str,
                       open_statuses: Iterable[str], summary: dict[str, Any] | None = None) -> bool:
        return self._settle_chunk(
            job_id, index, open_statuses,
            chunk_set={"status": ChunkStatus.DONE.value, "rows": rows, "result_key": result_key,
                       **({"summary": summary} if summary else {})},
            job_add={"chunks_done": 1, "rows_done": rows},
        )

    def fail_chunk(self, job_id: str, index: int, error: str,
                   open_statuses: Iterable[str]) -> bool:
        return self._settle_chunk(
            job_id, index, open_statuses,
            chunk_set={"status": ChunkStatus.FAILED.value, "error": error},
            job_add={"chunks_failed": 1},
        )

    def _settle_chunk(self, job_id, index, open_statuses, chunk_set, job_add) -> bool:
        now = utc_now()
        chunk_names = {"#status": "status", "#settled": "settled_at"}
        chunk_values = {":pending": {"S": ChunkStatus.PENDING.value}, ":now": {"S": now}}
        sets = ["#settled = :now"] + _placeholders(
            chunk_names, chunk_values, "c", {k: to_item_value(v) for k, v in chunk_set.items()},
            "{n} = {v}")
        job_names = {"#status": "status", "#updated": "updated_at"}
        job_values = {":now": {"S": now}}
        adds = _placeholders(job_names, job_values, "a",
                             {k: {"N": str(n)} for k, n in job_add.items()}, "{n} {v}")
        allowed = _status_in(job_values, "open", open_statuses)
        try:
            self._db.transact_write_items(TransactItems=[
                {"Update": {
                    "TableName": self._table, "Key": _key(job_id, chunk_sort_key(index)),
                    "UpdateExpression": "SET " + ", ".join(sets),
                    "ConditionExpression": "#status = :pending",
                    "ExpressionAttributeNames": chunk_names,
                    "ExpressionAttributeValues": chunk_values,
                }},
                {"Update": {
                    "TableName": self._table, "Key": _key(job_id, "META"),
                    "UpdateExpression": "SET #updated = :now ADD " + ", ".join(adds),
                    "ConditionExpression": allowed,
                    "ExpressionAttributeNames": job_names,
                    "ExpressionAttributeValues": job_values,
                }},
            ])
            return True
        except self._db.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise TransitionRejectedError(f"job {job_id} is not open for work") from None
            raise

    def list_chunks(self, job_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs = dict(
            TableName=self._table, ConsistentRead=True,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :chunk)",
            ExpressionAttributeValues={":pk": {"S": f"JOB#{job_id}"}, ":chunk": {"S": "CHUNK#"}},
        )
        while True:
            resp = self._db.query(**kwargs)
            items.extend(
                {k: from_item_value(v) for k, v in item.items() if k not in ("PK", "SK")}
                for item in resp.get("Items", [])
            )
            if "LastEvaluatedKey" not in resp:
                return items
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    # -- free-form records beside the job ----------------------------------

    def put_record(self, job_id: str, sort_key: str, item: dict[str, Any], ttl_epoch: int) -> None:
        body = {**_key(job_id, sort_key), "expires_at": {"N": str(ttl_epoch)}}
        body.update({k: to_item_value(v) for k, v in item.items() if v is not None})
        self._db.put_item(TableName=self._table, Item=body)

    def get_record(self, job_id: str, sort_key: str) -> dict[str, Any] | None:
        resp = self._db.get_item(
            TableName=self._table, Key=_key(job_id, sort_key), ConsistentRead=True
        )
        if "Item" not in resp:
            return None
        return {k: from_item_value(v) for k, v in resp["Item"].items() if k not in ("PK", "SK")}


def _job_from_item(item: dict) -> Job:
    plain = {k: from_item_value(v) for k, v in item.items()}
    return Job(
        job_id=plain["job_id"],
        processor=plain["processor"],
        filename=plain["filename"],
        source_key=plain["source_key"],
        status=JobStatus(plain["status"]),
        options=json.loads(plain.get("options_json") or "{}"),
        tenant=plain.get("tenant", "default"),
        chunks_total=plain.get("chunks_total"),
        chunks_done=plain.get("chunks_done", 0),
        chunks_failed=plain.get("chunks_failed", 0),
        rows_done=plain.get("rows_done", 0),
        items_total=plain.get("items_total"),
        items_label=plain.get("items_label"),
        created_at=plain["created_at"],
        updated_at=plain.get("updated_at", plain["created_at"]),
        finished_at=plain.get("finished_at"),
        error=plain.get("error"),
        result_key=plain.get("result_key"),
        outputs=plain.get("outputs") or {},
        callback_url=plain.get("callback_url"),
        totals=plain.get("totals") or {},
    )


def job_change_from_stream(record: dict) -> tuple[str | None, Job | None]:
    """(status before, job after) from one DynamoDB stream record of the
    table; (None, None) for records that are not a job's META item or that
    remove it (TTL)."""
    change = record.get("dynamodb", {})
    new = change.get("NewImage")
    if not new or new.get("SK", {}).get("S") != "META" or "job_id" not in new:
        return None, None
    old = change.get("OldImage") or {}
    before = old.get("status", {}).get("S")
    return before, _job_from_item(new)
