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
