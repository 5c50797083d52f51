"""`python -m sluice.admin keys` against the embedded AWS: a key is printed
once, on stdout alone; the table keeps its hash; list shows ids, names and
dates but never a key; revoke makes it stop working."""
from __future__ import annotations

import time

import pytest

from chalicelib.adapters.dynamodb_keys import DynamoApiKeyStore
from chalicelib.auth import key_hash, tenant_for
from sluice import admin


@pytest.fixture
def stage(embedded_environment):
    clients, outputs = embedded_environment
    return clients, outputs, outputs.stack_name.removeprefix("sluice-")


def test_create_list_and_revoke(stage, capsys):
    clients, outputs, name = stage
    store = DynamoApiKeyStore(clients("dynamodb"), outputs.values["TableName"])
    assert admin.main(["keys", "create", "--tenant", "acme", "--name", "billing export", "--days", "30",
                       "--stage", name]) == 0
    printed = capsys.readouterr()
    key = printed.out.strip()
    assert key.startswith("slk_") and "\n" not in key  # stdout holds the key alone
    assert "shown only now" in printed.err and "tenant acme" in printed.err
    assert tenant_for(store, key, int(time.time())) == "acme"
    assert key not in str(clients("dynamodb").scan(TableName=outputs.values["TableName"])["Items"])

    assert admin.main(["keys", "list", "--tenant", "acme", "--stage", name]) == 0
    listed = capsys.readouterr().out
    key_id = key_hash(key)[:12]
    assert listed.startswith(key_id) and "billing export" in listed and key not in listed

    assert admin.main(["keys", "revoke", "--tenant", "other", "--key-id", key_id, "--stage", name]) == 2
    assert "tenant other has no key" in capsys.readouterr().err
    assert admin.main(["keys", "revoke", "--tenant", "acme", "--key-id", key_id, "--stage", name]) == 0
    assert tenant_for(store, key, int(time.time())) is None


def test_a_tenant_name_that_cannot_be_used_is_a_usage_error(stage, capsys):
    _, _, name = stage
    assert admin.main(["keys", "create", "--tenant", "Acme Corp", "--name", "x", "--stage", name]) == 2
    assert "lowercase letters, digits and dashes" in capsys.readouterr().err
