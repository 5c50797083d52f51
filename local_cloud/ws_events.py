"""API Gateway's WebSocket API as Lambda and a client meet it: the $connect,
message and $disconnect events, how a $connect reply is read, and the
management API's (@connections) JSON.

The events carry the keys API Gateway sends (epoch milliseconds for
connectedAt and requestTimeEpoch, headers only on $connect and $disconnect),
so a handler cannot tell the local gateway from the deployed one. Pure
functions, so they are tested without a socket.
"""
from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from local_cloud.runtime import Invocation

API_ID = "local"


def new_id() -> str:
    """An id shaped like API Gateway's connection and request ids ('Abc123...=').

    URL-safe, so an id needs no escaping in /@connections/{id}.
    """
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode("ascii")


@dataclass(frozen=True)
class ConnectionContext:
    """What every event of one connection repeats in its requestContext."""

    connection_id: str
    domain_name: str
    stage: str
    source_ip: str
    user_agent: str
    connected_at_ms: int

    def request_context(self, route_key: str, event_type: str, now_ms: int) -> dict[str, Any]:
        request_id = new_id()
        return {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": request_time(now_ms),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": self.connected_at_ms,
            "requestTimeEpoch": now_ms,
            "identity": {"sourceIp": self.source_ip, "userAgent": self.user_agent},
            "requestId": request_id,
            "domainName": self.domain_name,
            "connectionId": self.connection_id,
            "apiId": API_ID,
        }


def connect_event(
    context: ConnectionContext,
    headers: Iterable[tuple[str, str]],
    query: Iterable[tuple[str, str]],
    now_ms: int,
) -> dict[str, Any]:
    """$connect: the upgrade request's headers and query string, as API Gateway forwards them."""
    event: dict[str, Any] = {
        **_multi("headers", "multiValueHeaders", headers),
        "requestContext": context.request_context("$connect", "CONNECT", now_ms),
        "isBase64Encoded": False,
    }
    event.update(_multi("queryStringParameters", "multiValueQueryStringParameters", query))
    return event


def message_event(context: ConnectionContext, data: str | bytes, now_ms: int) -> dict[str, Any]:
    """One frame; a binary frame's bytes arrive base64-encoded."""
    request = context.request_context("$default", "MESSAGE", now_ms)
    request["messageId"] = new_id()
    if isinstance(data, bytes):
        return {"requestContext": request, "body": base64.b64encode(data).decode("ascii"),
                "isBase64Encoded": True}
    return {"requestContext": request, "body": data, "isBase64Encoded": False}


def disconnect_event(
    context: ConnectionContext, status_code: int, reason: str, now_ms: int
) -> dict[str, Any]:
    request = context.request_context("$disconnect", "DISCONNECT", now_ms)
    request.update(disconnectStatusCode=status_code, disconnectReason=reason)
    # API Gateway sends these few headers on $disconnect, not the client's.
    headers = [("Host", context.domain_name), ("x-api-key", ""), ("X-Forwarded-For", ""),
               ("x-restapi", "")]
    return {**_multi("headers", "multiValueHeaders", headers), "requestContext": request,
            "isBase64Encoded": False}


def refusal(reply: Invocation) -> str | None:
    """Why a $connect reply refuses the connection, or None when it accepts it.

    API Gateway accepts only when the integration succeeded with a status
    below 400 (Chalice's handlers answer {"statusCode": 200} by default).
    """
    if not reply.ok:
        return f"the handler failed ({reply.error_type})"
    status = reply.payload.get("statusCode", 200) if isinstance(reply.payload, dict) else 200
    try:
        status = int(status)
    except (TypeError, ValueError):
        return f"the handler answered statusCode {status!r}"
    return f"the handler answered statusCode {status}" if status >= 400 else None


def connection_info(context: ConnectionContext, last_active_ms: int) -> dict[str, Any]:
    """GET /@connections/{id}, in the management API's own key names."""
    return {
        "connectedAt": iso_time(context.connected_at_ms),
        "identity": {"sourceIp": context.source_ip, "userAgent": context.user_agent},
        "lastActiveAt": iso_time(last_active_ms),
    }


def request_time(epoch_ms: int) -> str:
    """API Gateway's requestTime: '09/Feb/2024:10:00:00 +0000'."""
    return _utc(epoch_ms).strftime("%d/%b/%Y:%H:%M:%S +0000")


def iso_time(epoch_ms: int) -> str:
    return _utc(epoch_ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _utc(epoch_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)


def _multi(single: str, multi: str, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Lambda proxy's pair of maps: the last value of each name, and all of them.

    Both are left out when there is nothing, as API Gateway leaves out an
    absent query string.
    """
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    if not values:
        return {}
    return {single: {name: found[-1] for name, found in values.items()}, multi: values}
