"""API keys: what one is, how it is stored, how a presented one is checked.

A key is `slk_` and 43 random URL-safe characters (256 bits), shown once when
it is issued. Only its SHA-256 is stored: the key has enough entropy that a
fast hash is safe, and a lookup by hash needs no scan. A stored key names its
tenant and expires (its record carries a TTL, and the check refuses it past
its date even before DynamoDB deletes it).
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Protocol

from ..jobs.model import InputError

KEY_PREFIX = "slk_"
_KEY_SHAPE = re.compile(r"^slk_[A-Za-z0-9_-]{43}$")
_TENANT_SHAPE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class TenantNameError(InputError):
    """A tenant name that cannot be used."""


@dataclass(frozen=True)
class ApiKey:
    #: the first 12 characters of the key's hash: names it in lists and logs
    key_id: str
    tenant: str
    name: str
    created_at: int
    expires_at: int


class ApiKeyStore(Protocol):
    def put(self, digest: str, key: ApiKey) -> None: ...
    def get(self, digest: str) -> ApiKey | None: ...
    def delete(self, key_id: str, tenant: str) -> bool:
        """Forget the key whose id is `key_id`; False when there is none."""
    def list(self, tenant: str) -> list[ApiKey]: ...


def valid_tenant(name: str) -> str:
    if not isinstance(name, str) or not _TENANT_SHAPE.match(name):
        raise TenantNameError(f"tenant {name!r}: use 1-40 lowercase letters, digits and dashes, "
                              "starting with a letter or digit")
    return name


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(store: ApiKeyStore, tenant: str, name: str, now: int, days: int) -> tuple[str, ApiKey]:
    """A new key for `tenant`: (the key, shown once; its stored record)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    digest = key_hash(key)
    record = ApiKey(key_id=digest[:12], tenant=valid_tenant(tenant), name=name[:100] or "unnamed",
                    created_at=now, expires_at=now + days * 86400)
    store.put(digest, record)
    return key, record


def revoke_key(store: ApiKeyStore, tenant: str, key_id: str) -> bool:
    return store.delete(key_id, valid_tenant(tenant))


def bearer_token(header: str | None) -> str | None:
    """The key in an `Authorization: Bearer <key>` header, or None."""
    scheme, _, token = (header or "").strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def authenticate(store: ApiKeyStore, presented: str | None, now: int) -> ApiKey | None:
    """The live key this is, or None. Anything not shaped like a key is
    refused before the store is asked."""
    if not presented or not _KEY_SHAPE.match(presented):
        return None
    record = store.get(key_hash(presented))
    return record if record is not None and record.expires_at > now else None


def tenant_for(store: ApiKeyStore, presented: str | None, now: int) -> str | None:
    """The tenant whose live key this is, or None."""
    key = authenticate(store, presented, now)
    return key.tenant if key else None
