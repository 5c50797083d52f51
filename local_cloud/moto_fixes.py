"""One fix to moto (pinned in requirements-dev.txt) that local runs need.

moto's TransactWriteItems deep-copies every table it touches before it
starts, so that it can put the copy back if the transaction fails. A table
holds every item of every job the local cloud has run and every stream record
it ever produced (moto never trims them), so each transaction costs more than
the last: a 660-chunk scan spent two thirds of the embedded AWS's time in
that copy, and a `make run` left up for a day would crawl.

The fix keeps moto's own transaction logic and changes only its rollback:
before the transaction, the items it names are copied (and each table's
stream length noted); moto's whole-table copy becomes the table itself; if
the transaction fails, those items are put back and the stream records it
added are dropped. What a client sees is the same: all or nothing, and no
stream record for a cancelled transaction.
"""
from __future__ import annotations

import copy
import functools
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

_applied = False


class _TablesAreNotCopied:
    """Stands in for the `copy` module inside moto.dynamodb.models: a Table
    "copies" to itself; everything else (items, in update_item) really copies."""

    @staticmethod
    def deepcopy(value: Any, memo: dict | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def apply() -> None:
    """Install the fix in this process (idempotent). moto keeps its state in
    module globals, so it applies to every moto server and mock here."""
    global _applied
    if _applied:
        return
    dynamodb_models.copy = _TablesAreNotCopied
    DynamoDBBackend.transact_write_items = _with_item_rollback(DynamoDBBackend.transact_write_items)
    _applied = True


def _with_item_rollback(transact_write_items):
    @functools.wraps(transact_write_items)
    def wrapper(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        saved = _save(backend, transact_items)
        try:
            return transact_write_items(backend, transact_items)
        except Exception:
            _restore(saved)
            raise

    return wrapper


def _save(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]):
    items: list[tuple[Table, DynamoType, DynamoType | None, Any]] = []
    streams: dict[str, tuple[Table, int]] = {}
    for entry in transact_items:
        try:
            _, op = next(iter(entry.items()))
            table = backend.tables[op["TableName"]]
            key = op["Item"] if "Item" in op else op["Key"]
            hash_key, range_key = backend.get_keys_value(table, key)
        except (KeyError, StopIteration, AttributeError, TypeError, dynamodb_models.MockValidationException):
            continue  # moto itself refuses this entry before it changes anything
        items.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        if table.stream_shard is not None:
            streams.setdefault(table.name, (table, len(table.stream_shard.items)))
    return items, streams


def _restore(saved) -> None:
    items, streams = saved
    # In reverse, so that an item named twice ends as it was first seen.
    for table, hash_key, range_key, item in reversed(items):
        if range_key is None:
            if item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item
        elif item is None:
            table.items[hash_key].pop(range_key, None)
        else:
            table.items[hash_key][range_key] = item
    for table, length in streams.values():
        del table.stream_shard.items[length:]
