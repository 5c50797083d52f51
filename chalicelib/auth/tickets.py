"""One-time tickets for opening a WebSocket.

A browser cannot set headers on a WebSocket, so whatever proves who connects
rides in the URL, where proxies and access logs may keep it. A ticket makes
that harmless: the page asks `POST /live/tickets` for one with its API key
(a header, as every REST call), then connects with `?ticket=<ticket>`. The
ticket opens one connection, within TICKET_SECONDS, and is worth nothing
after: a URL that leaks leaks a spent ticket, never the key.

Like a key, a ticket is stored only as its SHA-256 (`TICKET#<hash>`, with a
TTL), and redeeming it deletes it in the same conditional write, so two
connects with one ticket open one connection. It names the key that bought
it (by the key's hash), and the key is checked again when the ticket is
redeemed: a key revoked in the ticket's minute opens no socket.
"""
from __future__ import annotations

import re
import secrets
from typing import Protocol

from .keys import ApiKey, ApiKeyStore, key_hash

TICKET_PREFIX = "slt_"
TICKET_SECONDS = 60
_TICKET_SHAPE = re.compile(r"^slt_[A-Za-z0-9_-]{43}$")


class TicketStore(Protocol):
    def put(self, digest: str, key_digest: str, expires_at: int) -> None: ...
    def take(self, digest: str, now: int) -> str | None:
        """The hash of the key that bought the ticket with this hash, if the
        ticket is still live, removing it in the same step; None when there
        is none (or no longer)."""


def issue_ticket(store: TicketStore, presented_key: str, now: int, seconds: int = TICKET_SECONDS) -> str:
    """A ticket for the key the caller presented (and the API accepted)."""
    ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
    store.put(key_hash(ticket), key_hash(presented_key), now + seconds)
    return ticket


def redeem_ticket(tickets: TicketStore, keys: ApiKeyStore, presented: str | None, now: int) -> ApiKey | None:
    """The live key that bought the ticket, once; anything not shaped like a
    ticket is refused before the store is asked."""
    if not presented or not _TICKET_SHAPE.match(presented):
        return None
    key_digest = tickets.take(key_hash(presented), now)
    key = keys.get(key_digest) if key_digest else None
    return key if key is not None and key.expires_at > now else None
