"""API Gateway's WebSocket API, locally: one aiohttp server on 127.0.0.1.

Clients connect on any path; the app's $connect, message and $disconnect
handlers run in the LambdaPool, as Lambda would run them. The app pushes back
through the management API on the same port, as it does on AWS:
``POST /@connections/{id}`` sends a frame, ``GET`` describes the connection,
``DELETE`` closes it, and an unknown or closed connection answers 410, which
botocore raises as GoneException. Requests to it are SigV4-signed by
botocore; the signature is not checked, its access key names the caller in
the gateway's own call ledger (``GET /_sluice/calls`` on this port, as the
embedded AWS keeps one), with the IAM resource each call needs.

The server runs its own event loop in its own thread. Invocations block for
as long as a handler runs, so they run in a thread pool: the loop keeps
answering pings, frames and @connections requests meanwhile, including the
pushes the running handler makes. Each connection's frames are invoked one
after another, in the order they arrived.
"""
from __future__ import annotations

import asyncio
import concurrent.futures as cf
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from local_cloud import ws_events
from local_cloud.aws_middleware import ACCOUNT, LEDGER_PATH, CallLedger, credential
from local_cloud.lambda_pool import LambdaPool
from local_cloud.runtime import Invocation
from local_cloud.sources import WebsocketRoutes
from local_cloud.ws_events import ConnectionContext

log = logging.getLogger("local_cloud.ws")

# API Gateway's limit on one WebSocket message (and on one post_to_connection).
MAX_MESSAGE_BYTES = 128 * 1024
START_TIMEOUT_S = 10.0
# How long stop() lets $disconnect handlers run for the connections it closes.
STOP_GRACE_S = 10.0


class WsPortInUseError(RuntimeError):
    """Another process already listens on the port asked for."""


@dataclass(eq=False)
class _Connection:
    context: ConnectionContext
    socket: web.WebSocketResponse
    last_active_ms: int
    # Frames waiting for the message handler; None after the last one.
    frames: asyncio.Queue[str | bytes | None] = field(default_factory=asyncio.Queue)
    # Set when this side closes it (DELETE, stop): the $disconnect event says so
    # even before the client's closing handshake ends.
    closed_by_server: tuple[int, str] | None = None

    async def close(self, code: int, reason: str) -> None:
        self.closed_by_server = (code, reason)
        await self.socket.close(code=code, message=reason.encode())


def _now_ms() -> int:
    return int(time.time() * 1000)


class WebSocketGateway:
    """bind() to learn the port (the pool's environment needs it), start(pool), stop()."""

    def __init__(self, port: int = 8001, host: str = "127.0.0.1", stage: str = "local",
                 max_message_bytes: int = MAX_MESSAGE_BYTES, invoke_threads: int = 32):
        self._host = host
        self._port = port
        self._stage = stage
        self._max_message_bytes = max_message_bytes
        self._invoke_threads = invoke_threads
        self._socket: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._executor: cf.ThreadPoolExecutor | None = None
        self._runner: web.AppRunner | None = None
        self._pool: LambdaPool | None = None
        self._routes = WebsocketRoutes()
        # Touched only on the loop's thread.
        self._connections: dict[str, _Connection] = {}
        self._sessions: set[asyncio.Task] = set()
        self.ledger = CallLedger()

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("WebSocketGateway is not bound")
        return self._socket.getsockname()[1]

    @property
    def url(self) -> str:
        return f"ws://{self._host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """The management API's endpoint_url (SLUICE_WS_ENDPOINT)."""
        return f"http://{self._host}:{self.port}"

    def environment(self) -> dict[str, str]:
        return {"SLUICE_WS_ENDPOINT": self.endpoint, "SLUICE_WS_URL": self.url}

    def bind(self) -> str:
        """Take the port now (a free one for port 0); serving starts with start()."""
        if self._socket is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self._host, self._port))
            except OSError as exc:
                sock.close()
                raise WsPortInUseError(
                    f"cannot serve the WebSocket gateway on {self._host}:{self._port} "
                    f"({exc.strerror}); pass --ws-port to pick another port"
                ) from None
            self._socket = sock
        return self.url

    def start(self, pool: LambdaPool) -> str:
        self.bind()
        self._pool = pool
        self._routes = pool.description.websocket
        self._executor = cf.ThreadPoolExecutor(self._invoke_threads, thread_name_prefix="ws-invoke")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="ws-gateway", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(START_TIMEOUT_S)
        return self.url

    def stop(self) -> None:
        """Close every connection (running its $disconnect) and stop serving; safe to call twice."""
        loop, self._loop = self._loop, None
        if loop is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(STOP_GRACE_S + 5)
            except Exception as exc:  # noqa: BLE001 - stopping goes on whatever went wrong
                log.warning("WebSocket gateway did not stop cleanly: %r", exc)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                loop.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    # -- on the loop's thread ------------------------------------------------------

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", LEDGER_PATH, self._serve_ledger)
        for prefix in ("", "/{stage}"):
            path = prefix + "/@connections/{connection_id}"
            app.router.add_post(path, self._post)
            app.router.add_get(path, self._get)
            app.router.add_delete(path, self._delete)
        app.router.add_get("/{path:.*}", self._session)
        # No access log: every push would be a line.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()

    async def _shutdown(self) -> None:
        # 1001 Going Away, as a server that shuts down says; each session then
        # runs its $disconnect while the pool is still there to run it.
        await asyncio.gather(*(c.close(1001, "local cloud stopping") for c in self._connections.values()),
                             return_exceptions=True)
        if self._sessions:
            _, stuck = await asyncio.wait(self._sessions, timeout=STOP_GRACE_S)
            for session in stuck:
                session.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _invoke(self, handler: str | None, event: dict[str, Any]) -> Invocation:
        if handler is None:
            # No route for it: API Gateway accepts the connection, drops the frame.
            return Invocation(True, None)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._pool.invoke, handler, event)
        except Exception as exc:  # noqa: BLE001 - the gateway's own failure fails the integration
            return Invocation(False, None, type(exc).__name__, str(exc))

    async def _session(self, request: web.Request) -> web.StreamResponse:
        # compress=False: API Gateway does not negotiate permessage-deflate.
        # aiohttp refuses a message of max_msg_size bytes or more, with 1009.
        sock = web.WebSocketResponse(max_msg_size=self._max_message_bytes + 1, compress=False)
        if not sock.can_prepare(request).ok:
            return web.json_response({"message": "Upgrade Required"}, status=426)
        context = await self._admit(request)
        if context is None:
            # Refused before the upgrade, as API Gateway refuses it.
            return web.json_response({"message": "Forbidden"}, status=403)

        await sock.prepare(request)
        connection = _Connection(context, sock, _now_ms())
        self._connections[context.connection_id] = connection
        self._sessions.add(asyncio.current_task())
        log.info("WebSocket %s connected from %s", context.connection_id, context.source_ip)
        delivering = asyncio.create_task(self._deliver(connection))
        try:
            # Reading here, not in _deliver, keeps pings answered while a handler runs.
            async for frame in sock:
                if frame.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    connection.last_active_ms = _now_ms()
                    connection.frames.put_nowait(frame.data)
        finally:
            # From here @connections answers 410 for it.
            self._connections.pop(context.connection_id, None)
            connection.frames.put_nowait(None)
            await delivering
            code, reason = connection.closed_by_server or (sock.close_code or 1006, _close_reason(sock))
            await self._invoke(self._routes.disconnect,
                               ws_events.disconnect_event(context, code, reason, _now_ms()))
            self._sessions.discard(asyncio.current_task())
            log.info("WebSocket %s disconnected (%s)", context.connection_id, code)
        return sock

    async def _admit(self, request: web.Request) -> ConnectionContext | None:
        """Run $connect for the upgrade request; None when it refuses the connection."""
        context = ConnectionContext(
            connection_id=ws_events.new_id(), domain_name=f"{self._host}:{self.port}",
            stage=self._stage, source_ip=request.remote or "",
            user_agent=request.headers.get("User-Agent", ""), connected_at_ms=_now_ms(),
        )
        headers = [*request.headers.items(), ("X-Forwarded-For", context.source_ip),
                   ("X-Forwarded-Port", str(self.port)), ("X-Forwarded-Proto", "http")]
        event = ws_events.connect_event(context, headers, request.query.items(), _now_ms())
        refusal = ws_events.refusal(await self._invoke(self._routes.connect, event))
        if refusal:
            log.info("WebSocket from %s refused by %s: %s", context.source_ip, self._routes.connect,
                     refusal)
            return None
        return context

    async def _deliver(self, connection: _Connection) -> None:
        """Invoke the message handler for each frame, in order, until the end mark."""
        while (data := await connection.frames.get()) is not None:
            event = ws_events.message_event(connection.context, data, _now_ms())
            reply = await self._invoke(self._routes.message, event)
            if not reply.ok:
                log.warning("WebSocket %s: %s failed (%s)", connection.context.connection_id,
                            self._routes.message, reply.error_type)
                # What API Gateway tells the client when the integration fails.
                await _send_quietly(connection.socket, json.dumps({
                    "message": "Internal server error",
                    "connectionId": connection.context.connection_id,
                    "requestId": event["requestContext"]["requestId"],
                }))

    # -- the management API ----------------------------------------------------------

    def _connection(self, request: web.Request, operation: str) -> _Connection | None:
        # What IAM authorises: execute-api:ManageConnections on
        # <api>/<stage>/<METHOD>/@connections/<id>.
        found = credential(request.headers.get("Authorization", ""))
        actor, region, _ = found or ("anonymous", "", "")
        self.ledger.add(actor, "execute-api", operation, [(operation, (
            f"arn:aws:execute-api:{region}:{ACCOUNT}:local/{self._stage}/{request.method}/@connections/"
            "<connection_id>"))])
        connection = self._connections.get(request.match_info["connection_id"])
        return connection if connection is not None and not connection.socket.closed else None

    async def _post(self, request: web.Request) -> web.Response:
        connection = self._connection(request, "PostToConnection")
        data = await request.read()
        if connection is None:
            return _gone()
        if len(data) > self._max_message_bytes:
            return _error(413, "PayloadTooLargeException",
                          f"Message of {len(data)} bytes exceeds {self._max_message_bytes}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        try:
            if text is None:
                await connection.socket.send_bytes(data)
            else:
                await connection.socket.send_str(text)
        except ConnectionError:
            return _gone()
        connection.last_active_ms = _now_ms()
        return web.Response(status=200)

    async def _get(self, request: web.Request) -> web.Response:
        connection = self._connection(request, "GetConnection")
        if connection is None:
            return _gone()
        return web.json_response(ws_events.connection_info(connection.context, connection.last_active_ms))

    async def _delete(self, request: web.Request) -> web.Response:
        connection = self._connection(request, "DeleteConnection")
        if connection is None:
            return _gone()
        await connection.close(1000, "closed by the management API")
        return web.Response(status=204)


    async def _serve_ledger(self, request: web.Request) -> web.Response:
        return web.Response(body=self.ledger.serve(request.method), content_type="application/json")


def _close_reason(sock: web.WebSocketResponse) -> str:
    exception = sock.exception()
    return str(exception) if exception else f"close code {sock.close_code}"


async def _send_quietly(sock: web.WebSocketResponse, text: str) -> None:
    try:
        await sock.send_str(text)
    except (ConnectionError, RuntimeError):
        pass  # closed meanwhile: there is no one left to tell


def _gone() -> web.Response:
    return _error(410, "GoneException", "The connection is gone")


def _error(status: int, error_type: str, message: str) -> web.Response:
    # botocore names the exception from x-amzn-ErrorType.
    return web.json_response({"message": message}, status=status,
                             headers={"x-amzn-ErrorType": error_type})
