"""Job and chunk state in one DynamoDB table (PK=JOB#<id>, SK=META | CHUNK#<n>).

A job that is not final also carries `open_pk`/`open_sk`, the keys of the
sparse index `open_jobs` (KEYS_ONLY): the sweeper finds every unfinished job
with one query, never a scan. The keys are written when the job is created or
reopened and removed when it becomes final, so the index is written twice
per job, never by the counters, and one partition key is enough.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from ..jobs.model import (
    ChunkStatus,
    Job,
    JobNotFoundError,
    JobStatus,
    TransitionRejectedError,
    utc_now,
)
from ..jobs.ports import JobRecord
from .errors import service_errors

_ser = TypeSerializer()
_deser = TypeDeserializer()

_JOB_FIELDS = {
    "chunks_total", "chunks_done", "chunks_failed", "rows_done", "finished_at",
    "error", "result_key", "outputs", "totals", "items_total", "items_label", "sweeps",
}

OPEN_INDEX = "open_jobs"
_OPEN = {"S": "OPEN"}
_FINAL = frozenset(s.value for s in JobStatus if s.is_final)
# A transaction takes 100 items: the job and this many chunks.
_RETRY_BATCH = 99


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


def _cancellation_reasons(exc: ClientError) -> list[str | None]:
    """Why a transaction was cancelled: one code per item, in order."""
    return [r.get("Code") for r in exc.response.get("CancellationReasons", [])]


def _key(job_id: str, sort_key: str) -> dict:
    return {"PK": {"S": f"JOB#{job_id}"}, "SK": {"S": sort_key}}


def chunk_sort_key(index: int) -> str:
    return f"CHUNK#{index:06d}"


class DynamoJobStore:
    def __init__(self, client, table: str):
        self._db = client
        self._table = table

    # -- jobs -------------------------------------------------------------

    @service_errors("DynamoDB")
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
        if not job.status.is_final:
            item.update(_open_keys(job.job_id))
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

    @service_errors("DynamoDB")
    def get_job(self, job_id: str) -> Job:
        resp = self._db.get_item(
            TableName=self._table, Key=_key(job_id, "META"), ConsistentRead=True
        )
        if "Item" not in resp:
            raise JobNotFoundError(f"no job with id {job_id!r}")
        return _job_from_item(resp["Item"])

    @service_errors("DynamoDB")
    def list_jobs(self, limit: int = 50, tenant: str = "default") -> list[Job]:
        resp = self._db.query(
            TableName=self._table, IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"TENANT#{tenant}"}},
            ScanIndexForward=False, Limit=limit,
        )
        return [_job_from_item(item) for item in resp.get("Items", [])]

    @service_errors("DynamoDB")
    def transition(self, job_id: str, from_statuses: Iterable[str], to_status: str,
                   record: JobRecord | None = None, **fields: Any) -> Job:
        unknown = set(fields) - _JOB_FIELDS
        if unknown:
            raise ValueError(f"cannot set job fields {sorted(unknown)}")
        allowed_statuses = list(from_statuses)
        names = {"#status": "status", "#updated": "updated_at"}
        values = {":to": {"S": to_status}, ":now": {"S": utc_now()}}
        sets = ["#status = :to", "#updated = :now"]
        typed = {k: to_item_value(v) for k, v in fields.items()}
        sets += _placeholders(names, values, "f", typed, "{n} = {v}")
        allowed = _status_in(values, "from", allowed_statuses)
        # A final job leaves the index of open jobs.
        removes = " REMOVE open_pk, open_sk" if to_status in _FINAL else ""
        update = {
            "TableName": self._table, "Key": _key(job_id, "META"),
            "UpdateExpression": "SET " + ", ".join(sets) + removes,
            "ConditionExpression": f"attribute_exists(PK) AND {allowed}",
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
        }
        try:
            if record is None:
                return _job_from_item(self._db.update_item(**update, ReturnValues="ALL_NEW")["Attributes"])
            self._db.transact_write_items(TransactItems=[
                {"Update": update},
                {"Put": {"TableName": self._table, "Item": self._record_item(
                    job_id, record.sort_key, record.item, record.ttl_epoch)}},
            ])
        except self._db.exceptions.ConditionalCheckFailedException:
            raise self._rejected(job_id, allowed_statuses) from None
        except self._db.exceptions.TransactionCanceledException as exc:
            if _cancellation_reasons(exc)[:1] == ["ConditionalCheckFailed"]:
                raise self._rejected(job_id, allowed_statuses) from None
            raise
        # A transaction returns no item: read the job as it is after it.
        return self.get_job(job_id)

    def _rejected(self, job_id: str, from_statuses: list[str]) -> TransitionRejectedError:
        current = self.get_job(job_id)  # raises JobNotFoundError when missing
        return TransitionRejectedError(
            f"job {job_id} is {current.status.value}, not one of {sorted(from_statuses)}")

    # -- chunks -----------------------------------------------------------

    @service_errors("DynamoDB")
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

    @service_errors("DynamoDB")
    def complete_chunk(self, job_id: str, index: int, rows: int, result_key: str,
                       open_statuses: Iterable[str], summary: dict[str, Any] | None = None) -> bool:
        return self._settle_chunk(
            job_id, index, open_statuses,
            chunk_set={"status": ChunkStatus.DONE.value, "rows": rows, "result_key": result_key,
                       **({"summary": summary} if summary else {})},
            job_add={"chunks_done": 1, "rows_done": rows},
        )

    @service_errors("DynamoDB")
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
            reasons = _cancellation_reasons(exc)
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise TransitionRejectedError(f"job {job_id} is not open for work") from None
            raise

    @service_errors("DynamoDB")
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

    @service_errors("DynamoDB")
    def get_chunk(self, job_id: str, index: int) -> dict[str, Any] | None:
        resp = self._db.get_item(
            TableName=self._table, Key=_key(job_id, chunk_sort_key(index)), ConsistentRead=True
        )
        if "Item" not in resp:
            return None
        return {k: from_item_value(v) for k, v in resp["Item"].items() if k not in ("PK", "SK")}

    @service_errors("DynamoDB")
    def note_chunk_error(self, job_id: str, index: int, error: str) -> None:
        try:
            self._db.update_item(
                TableName=self._table, Key=_key(job_id, chunk_sort_key(index)),
                UpdateExpression="SET last_error = :error, last_error_at = :now ADD attempts :one",
                ConditionExpression="#status = :pending",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":error": {"S": error}, ":now": {"S": utc_now()},
                                           ":one": {"N": "1"},
                                           ":pending": {"S": ChunkStatus.PENDING.value}},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            pass  # settled meanwhile, or no such chunk: nothing to note

    @service_errors("DynamoDB")
    def retry_chunks(self, job_id: str, indexes: list[int], from_statuses: Iterable[str],
                     ttl_epoch: int) -> Job:
        # Each transaction moves the job's counter and its chunks together, so
        # the counts stay true between batches; the first one reopens the job.
        allowed = list(from_statuses)
        for start in range(0, len(indexes), _RETRY_BATCH):
            batch = indexes[start:start + _RETRY_BATCH]
            statuses = allowed if start == 0 else [JobStatus.PROCESSING.value]
            items = [self._reopen(job_id, len(batch), statuses, ttl_epoch)]
            items += [self._reset_failed_chunk(job_id, index, ttl_epoch) for index in batch]
            try:
                self._db.transact_write_items(TransactItems=items)
            except self._db.exceptions.TransactionCanceledException as exc:
                reasons = _cancellation_reasons(exc)
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    raise self._rejected(job_id, statuses) from None
                if "ConditionalCheckFailed" in reasons:
                    raise TransitionRejectedError(
                        f"job {job_id}: not every chunk to retry has failed") from None
                raise
        return self.get_job(job_id)

    def _reopen(self, job_id: str, chunks: int, statuses: list[str], ttl_epoch: int) -> dict:
        values = {":processing": {"S": JobStatus.PROCESSING.value}, ":now": {"S": utc_now()},
                  ":ttl": {"N": str(ttl_epoch)}, ":minus": {"N": str(-chunks)},
                  ":open": _OPEN, ":job": {"S": job_id}}
        return {"Update": {
            "TableName": self._table, "Key": _key(job_id, "META"),
            "UpdateExpression": "SET #status = :processing, #updated = :now, expires_at = :ttl, "
                                "open_pk = :open, open_sk = :job "
                                "REMOVE #error, finished_at ADD chunks_failed :minus",
            "ConditionExpression": "attribute_exists(PK) AND " + _status_in(values, "from", statuses),
            "ExpressionAttributeNames": {"#status": "status", "#updated": "updated_at", "#error": "error"},
            "ExpressionAttributeValues": values,
        }}

    def _reset_failed_chunk(self, job_id: str, index: int, ttl_epoch: int) -> dict:
        return {"Update": {
            "TableName": self._table, "Key": _key(job_id, chunk_sort_key(index)),
            "UpdateExpression": "SET #status = :pending, last_error = if_not_exists(#error, :none), "
                                "expires_at = :ttl REMOVE #error, settled_at",
            "ConditionExpression": "#status = :failed",
            "ExpressionAttributeNames": {"#status": "status", "#error": "error"},
            "ExpressionAttributeValues": {":pending": {"S": ChunkStatus.PENDING.value},
                                          ":failed": {"S": ChunkStatus.FAILED.value},
                                          ":none": {"NULL": True}, ":ttl": {"N": str(ttl_epoch)}},
        }}

    @service_errors("DynamoDB")
    def list_open_jobs(self) -> list[Job]:
        kwargs = dict(TableName=self._table, IndexName=OPEN_INDEX,
                      KeyConditionExpression="open_pk = :open",
                      ExpressionAttributeValues={":open": _OPEN})
        job_ids = []
        while True:
            resp = self._db.query(**kwargs)
            job_ids += [item["PK"]["S"].removeprefix("JOB#") for item in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        jobs = []
        for job_id in job_ids:
            try:
                job = self.get_job(job_id)
            except JobNotFoundError:
                continue  # expired since the index was read
            if not job.status.is_final:  # the index lags the table a little
                jobs.append(job)
        return jobs

    # -- free-form records beside the job ----------------------------------

    @service_errors("DynamoDB")
    def put_record(self, job_id: str, sort_key: str, item: dict[str, Any], ttl_epoch: int) -> None:
        self._db.put_item(TableName=self._table, Item=self._record_item(job_id, sort_key, item, ttl_epoch))

    @staticmethod
    def _record_item(job_id: str, sort_key: str, item: dict[str, Any], ttl_epoch: int) -> dict:
        body = {**_key(job_id, sort_key), "expires_at": {"N": str(ttl_epoch)}}
        body.update({k: to_item_value(v) for k, v in item.items() if v is not None})
        return body

    @service_errors("DynamoDB")
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
        sweeps=plain.get("sweeps") or {},
    )


def _open_keys(job_id: str) -> dict:
    return {"open_pk": _OPEN, "open_sk": {"S": job_id}}


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
