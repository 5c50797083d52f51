"""API keys per tenant: issued once, stored only as a hash, presented as
`Authorization: Bearer <key>` (or `api_key` on a WebSocket connect), and
turned back into the tenant whose jobs the caller may see."""
from .keys import (
    KEY_PREFIX,
    ApiKey,
    ApiKeyStore,
    TenantNameError,
    authenticate,
    bearer_token,
    issue_key,
    key_hash,
    revoke_key,
    tenant_for,
    valid_tenant,
)

__all__ = ["KEY_PREFIX", "ApiKey", "ApiKeyStore", "TenantNameError", "authenticate", "bearer_token",
           "issue_key",
           "key_hash", "revoke_key", "tenant_for", "valid_tenant"]
