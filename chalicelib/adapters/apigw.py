"""Pushing messages down WebSocket connections through API Gateway's
management API (`@connections`).

Chalice configures that client only inside its own WebSocket handlers; the
workers and the stream handler that send progress are not, so the endpoint
comes from settings (SLUICE_WS_ENDPOINT: the API's https URL with its stage
on AWS, the local gateway under local_cloud). Without an endpoint nothing is
sent: live progress is an extra, never a reason for a job to fail.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)


class ApiGatewaySender:
    def __init__(self, client_factory, endpoint: str):
        self._factory = client_factory
        self._endpoint = endpoint
        self._client = None

    def send(self, connection_id: str, message: dict[str, Any]) -> bool:
        if not self._endpoint:
            return True
        if self._client is None:
            self._client = self._factory(self._endpoint)
        data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=data)
            return True
        except self._client.exceptions.GoneException:
            return False
        except (ClientError, BotoCoreError) as exc:
            # A push that fails for any other reason is dropped, not retried:
            # the next PROGRESS supersedes it, and the job's state holds it all.
            log.warning("WebSocket push to %s failed: %s", connection_id, exc)
            return True
