"""API keys in memory, for unit tests and the in-memory pipeline."""
from __future__ import annotations

import threading

from .keys import ApiKey


class MemoryApiKeyStore:
    def __init__(self):
        self.keys: dict[str, ApiKey] = {}
        self._lock = threading.Lock()

    def put(self, digest: str, key: ApiKey) -> None:
        with self._lock:
            self.keys[digest] = key

    def get(self, digest: str) -> ApiKey | None:
        with self._lock:
            return self.keys.get(digest)

    def delete(self, key_id: str, tenant: str) -> bool:
        with self._lock:
            for digest, key in list(self.keys.items()):
                if key.key_id == key_id and key.tenant == tenant:
                    del self.keys[digest]
                    return True
            return False

    def list(self, tenant: str) -> list[ApiKey]:
        with self._lock:
            return sorted((k for k in self.keys.values() if k.tenant == tenant),
                          key=lambda k: k.created_at)


class MemoryTicketStore:
    def __init__(self):
        self.tickets: dict[str, tuple[str, int]] = {}  # ticket hash -> (key hash, expires_at)
        self._lock = threading.Lock()

    def put(self, digest: str, key_digest: str, expires_at: int) -> None:
        with self._lock:
            self.tickets[digest] = (key_digest, expires_at)

    def take(self, digest: str, now: int) -> str | None:
        with self._lock:
            key_digest, expires_at = self.tickets.get(digest, (None, 0))
            if key_digest is None or expires_at <= now:
                return None
            del self.tickets[digest]
            return key_digest
