"""API keys, managed by an operator with AWS access to the stage's table:

    python -m sluice.admin keys create --tenant acme --name "billing export" [--days 365]
    python -m sluice.admin keys list --tenant acme
    python -m sluice.admin keys revoke --tenant acme --key-id 3f9c2a1b7d4e

`create` prints the key once, on stdout alone (so `KEY=$(... keys create ...)`
works); only its hash is stored. API Gateway caches an authorizer's answer
for 5 minutes, so a revoked key may work that much longer.
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

from chalicelib import aws
from chalicelib.adapters.dynamodb_keys import DynamoApiKeyStore
from chalicelib.auth import issue_key, revoke_key
from chalicelib.settings import Settings


def add_commands(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("keys", help="issue, list and revoke tenant API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="issue a key and print it (once)")
    create.add_argument("--name", required=True, help="what the key is for, shown in lists")
    create.add_argument("--days", type=int, help="how long it lives (default: SLUICE_API_KEY_DAYS, 365)")
    listing = actions.add_parser("list", help="a tenant's keys (ids, names, dates; never the keys)")
    revoke = actions.add_parser("revoke", help="forget a key")
    revoke.add_argument("--key-id", required=True, help="as `list` shows it")
    for action in (create, listing, revoke):
        action.add_argument("--tenant", required=True, help="lowercase letters, digits and dashes")
        action.add_argument("--stage", help="the table of stack sluice-<stage> (default: SLUICE_TABLE)")


def run(args: argparse.Namespace) -> int:
    store = DynamoApiKeyStore(aws.client("dynamodb"), _table(args.stage))
    if args.action == "create":
        days = args.days or Settings.from_env().api_key_days
        key, record = issue_key(store, args.tenant, args.name, int(time.time()), days)
        print(key)
        print(f"key {record.key_id} for tenant {record.tenant}, expires {_day(record.expires_at)}; "
              "it is shown only now", file=sys.stderr)
        return 0
    if args.action == "list":
        for key in store.list(args.tenant):
            print(f"{key.key_id}  {_day(key.created_at)}  expires {_day(key.expires_at)}  {key.name}")
        return 0
    if revoke_key(store, args.tenant, args.key_id):
        print(f"revoked {args.key_id}")
        return 0
    print(f"tenant {args.tenant} has no key {args.key_id}", file=sys.stderr)
    return 2


def _table(stage: str | None) -> str:
    if stage is None:
        return Settings.from_env().table
    stack = aws.client("cloudformation").describe_stacks(StackName=f"sluice-{stage}")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["TableName"]


def _day(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")
