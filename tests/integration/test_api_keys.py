"""API keys: one contract, the in-memory store and the DynamoDB one (moto),
and the checks a presented key goes through."""
from __future__ import annotations

import json

import pytest

from chalicelib.adapters.dynamodb_keys import DynamoApiKeyStore, DynamoTicketStore
from chalicelib.auth import (
    KEY_PREFIX,
    TenantNameError,
    bearer_token,
    issue_key,
    key_hash,
    revoke_key,
    tenant_for,
)
from chalicelib.auth.memory import MemoryApiKeyStore, MemoryTicketStore
from chalicelib.auth.tickets import TICKET_PREFIX, TICKET_SECONDS, issue_ticket, redeem_ticket

NOW = 1_800_000_000


@pytest.fixture(params=["memory", "dynamodb"])
def store(request):
    if request.param == "memory":
        return MemoryApiKeyStore()
    stack = request.getfixturevalue("moto_stack")
    return DynamoApiKeyStore(stack.client("dynamodb"), stack.settings.table)


def test_a_key_is_shown_once_stored_as_its_hash_and_names_its_tenant(store):
    key, record = issue_key(store, "acme", "ci pipeline", NOW, days=30)
    assert key.startswith(KEY_PREFIX) and len(key) == 47
    assert record.key_id == key_hash(key)[:12] and record.expires_at == NOW + 30 * 86400
    assert tenant_for(store, key, NOW) == "acme"
    assert store.get(key) is None  # nothing is stored under the key itself
    assert [k.name for k in store.list("acme")] == ["ci pipeline"] and store.list("other") == []


def test_wrong_expired_revoked_and_malformed_keys_name_no_tenant(store):
    key, record = issue_key(store, "acme", "laptop", NOW, days=1)
    other, _ = issue_key(store, "acme", "other", NOW, days=1)
    assert tenant_for(store, key[:-1] + ("A" if key[-1] != "A" else "B"), NOW) is None
    assert tenant_for(store, key, NOW + 86400) is None  # expired, even before TTL deletes it
    for junk in (None, "", "Bearer x", key + "x", "slk_" + "!" * 43):
        assert tenant_for(store, junk, NOW) is None
    assert revoke_key(store, "someone-else", record.key_id) is False
    assert revoke_key(store, "acme", record.key_id) is True
    assert tenant_for(store, key, NOW) is None and tenant_for(store, other, NOW) == "acme"


def test_every_stored_key_expires(moto_stack):
    store = DynamoApiKeyStore(moto_stack.client("dynamodb"), moto_stack.settings.table)
    key, record = issue_key(store, "acme", "x", NOW, days=7)
    item = moto_stack.client("dynamodb").get_item(
        TableName=moto_stack.settings.table,
        Key={"PK": {"S": f"APIKEY#{key_hash(key)}"}, "SK": {"S": "META"}})
    assert int(item["Item"]["expires_at"]["N"]) == record.expires_at


@pytest.mark.parametrize("header, token", [
    ("Bearer slk_abc", "slk_abc"), ("bearer   slk_abc ", "slk_abc"), ("Basic dXNlcg==", None),
    ("slk_abc", None), ("Bearer", None), (None, None),
])
def test_bearer_tokens(header, token):
    assert bearer_token(header) == token


@pytest.mark.parametrize("tenant", ["", "Acme", "a" * 41, "-lead", "a b", "tenant/1"])
def test_tenant_names_are_checked(tenant):
    with pytest.raises(TenantNameError, match="lowercase letters, digits and dashes"):
        issue_key(MemoryApiKeyStore(), tenant, "x", NOW, days=1)


# -- WebSocket tickets (chalicelib/auth/tickets.py) -----------------------------------

@pytest.fixture(params=["memory", "dynamodb"])
def ticket_stores(request):
    if request.param == "memory":
        return MemoryTicketStore(), MemoryApiKeyStore()
    stack = request.getfixturevalue("moto_stack")
    db, table = stack.client("dynamodb"), stack.settings.table
    return DynamoTicketStore(db, table), DynamoApiKeyStore(db, table)


def test_a_ticket_is_redeemed_once_for_the_key_that_bought_it(ticket_stores):
    tickets, keys = ticket_stores
    key, record = issue_key(keys, "acme", "browser", NOW, days=1)
    ticket = issue_ticket(tickets, key, NOW)
    assert ticket.startswith(TICKET_PREFIX) and len(ticket) == 47 and key not in ticket
    assert redeem_ticket(tickets, keys, ticket, NOW + TICKET_SECONDS - 1) == record
    assert redeem_ticket(tickets, keys, ticket, NOW + 1) is None  # spent


def test_an_expired_forged_or_malformed_ticket_or_a_revoked_key_redeems_nothing(ticket_stores):
    tickets, keys = ticket_stores
    key, record = issue_key(keys, "acme", "browser", NOW, days=1)
    late = issue_ticket(tickets, key, NOW)
    assert redeem_ticket(tickets, keys, late, NOW + TICKET_SECONDS) is None  # expired, before TTL
    for junk in (None, "", key, "slt_" + "x" * 43, "slt_" + "!" * 43, issue_ticket(tickets, key, NOW) + "x"):
        assert redeem_ticket(tickets, keys, junk, NOW) is None
    revoked = issue_ticket(tickets, key, NOW)
    assert revoke_key(keys, "acme", record.key_id)
    assert redeem_ticket(tickets, keys, revoked, NOW) is None
    # A ticket bought with something that is not a key names no key.
    assert redeem_ticket(tickets, keys, issue_ticket(tickets, "", NOW), NOW) is None


def test_a_stored_ticket_is_its_hash_and_expires(moto_stack):
    db, table = moto_stack.client("dynamodb"), moto_stack.settings.table
    ticket = issue_ticket(DynamoTicketStore(db, table), "slk_" + "k" * 43, NOW)
    item = db.get_item(TableName=table, Key={"PK": {"S": f"TICKET#{key_hash(ticket)}"}, "SK": {"S": "META"}})
    assert int(item["Item"]["expires_at"]["N"]) == NOW + TICKET_SECONDS
    assert item["Item"]["key_digest"]["S"] == key_hash("slk_" + "k" * 43)
    assert ticket not in json.dumps(item)
