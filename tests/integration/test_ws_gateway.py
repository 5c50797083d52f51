"""local_cloud's WebSocket gateway, driven by a real WebSocket client.

Two setups. The whole local cloud in this process, where the app's own
handlers keep connections in DynamoDB and push job messages through the
management API. And a tiny Chalice app of this file's own, on a LambdaPool
of its own, for what the app never does: refuse a connection, fail a
message, take its time.
"""
from __future__ import annotations

import io
import json
import logging
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import openpyxl
import pytest
import requests
from chalice import Chalice
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from chalicelib import aws, wiring
from chalicelib.adapters.apigw import ApiGatewaySender
from chalicelib.adapters.dynamodb_keys import DynamoApiKeyStore
from chalicelib.auth import issue_key, revoke_key
from chalicelib.settings import get_settings
from local_cloud.cloud import LocalCloud
from local_cloud.lambda_pool import LambdaPool
from local_cloud.runtime import Invocation
from local_cloud.sources import WebsocketRoutes, describe_app
from local_cloud.ws_events import refusal
from local_cloud.ws_gateway import MAX_MESSAGE_BYTES, WebSocketGateway

CSV = b"name,amount,day\nann,10,2024-01-02\nbob,12.5,2024-01-03\ncarol,,2024-01-04\n"


def _until(check, timeout: float = 15.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while (found := check()) is None or found is False:
        assert time.monotonic() < deadline, f"{what} not met after {timeout} s"
        time.sleep(0.1)
    return found


def _json(ws: ClientConnection, timeout: float = 30) -> dict:
    return json.loads(ws.recv(timeout=timeout))


# -- the app, in the whole local cloud ------------------------------------------------

@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(aws_port=0, api_port=0, ws_port=0, workers=1, log_level=logging.WARNING) as cloud:
        # The in-process API and this test's clients must read this cloud's settings.
        wiring.reset()
        yield cloud
    wiring.reset()


def _connections(cloud: LocalCloud) -> dict[str, dict]:
    """The CONN# items of the jobs table, by connection id."""
    items = cloud.clients("dynamodb").scan(
        TableName=cloud.outputs["TableName"], FilterExpression="begins_with(PK, :conn)",
        ExpressionAttributeValues={":conn": {"S": "CONN#"}})["Items"]
    return {item["connection_id"]["S"]: item for item in items}


@contextmanager
def _connected(cloud: LocalCloud) -> Iterator[tuple[ClientConnection, str]]:
    """A client connection and its id, read from the item its $connect wrote."""
    before = set(_connections(cloud))
    with connect(_signed_in(cloud), open_timeout=10) as ws:
        # $connect has run by the time the upgrade is answered.
        (connection_id,) = set(_connections(cloud)) - before
        yield ws, connection_id


def _signed_in(cloud: LocalCloud) -> str:
    """The socket's URL with the key local_cloud made, as a browser connects."""
    return f"{cloud.ws_url}/?api_key={cloud.api_key}"


def _management():
    """The client the app itself pushes through (SLUICE_WS_ENDPOINT)."""
    return aws.websocket_management(get_settings().ws_endpoint)


def test_the_environment_names_the_gateway(cloud):
    endpoint = cloud.ws_url.replace("ws://", "http://")
    assert get_settings().ws_endpoint == endpoint
    assert get_settings().ws_url == cloud.ws_url
    assert _management().meta.endpoint_url == endpoint  # not AWS_ENDPOINT_URL, the embedded AWS


def test_connect_stores_the_connection_and_disconnect_removes_it(cloud):
    with _connected(cloud) as (_, connection_id):
        item = _connections(cloud)[connection_id]
        assert item["PK"] == {"S": f"CONN#{connection_id}"} and item["SK"] == {"S": "META"}
        assert item["source_ip"] == {"S": "127.0.0.1"} and item["tenant"] == {"S": "local"}
        assert int(item["expires_at"]["N"]) > time.time()
    _until(lambda: connection_id not in _connections(cloud), what="$disconnect removing the item")


@pytest.mark.parametrize("query", ["", "?api_key=", "?api_key=slk_" + "x" * 43, "?ticket=",
                                   "?ticket=slt_" + "x" * 43, "?ticket=not-a-ticket"])
def test_the_app_refuses_a_connection_without_a_live_key(cloud, query):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{cloud.ws_url}/{query}", open_timeout=10)
    assert refused.value.response.status_code == 403


def _ticket(cloud: LocalCloud, key: str | None = None) -> dict:
    answer = requests.post(f"{cloud.api_url}/live/tickets", timeout=30,
                           headers={"Authorization": f"Bearer {key or cloud.api_key}"})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_ticket_opens_one_socket_and_the_key_never_rides_in_its_url(cloud):
    ticket = _ticket(cloud)
    assert ticket["expires_in"] == 60 and cloud.api_key not in json.dumps(ticket)
    assert ticket["url"] == f"{cloud.ws_url}?ticket={ticket['ticket']}"
    with connect(ticket["url"], open_timeout=10) as ws:
        ws.send(json.dumps({"action": "subscribe", "job_id": "nope"}))
        assert _json(ws)["type"] == "ERROR"  # signed in: the answer is about the job, not the sign-in
    # Spent: a second connect with it (a leaked URL) is refused.
    with pytest.raises(InvalidStatus) as refused:
        connect(ticket["url"], open_timeout=10)
    assert refused.value.response.status_code == 403


def test_a_ticket_whose_key_was_revoked_meanwhile_opens_nothing(cloud):
    keys = DynamoApiKeyStore(cloud.clients("dynamodb"), cloud.outputs["TableName"])
    key, record = issue_key(keys, "local", "revoked soon", int(time.time()), days=1)
    ticket = _ticket(cloud, key)
    assert revoke_key(keys, "local", record.key_id)
    with pytest.raises(InvalidStatus) as refused:
        connect(ticket["url"], open_timeout=10)
    assert refused.value.response.status_code == 403


def test_without_a_key_there_is_no_ticket(cloud):
    assert requests.post(f"{cloud.api_url}/live/tickets", timeout=30).status_code == 401


def test_subscribing_to_an_unknown_job_answers_an_error_naming_it(cloud):
    with connect(_signed_in(cloud), open_timeout=10) as ws:
        ws.send(json.dumps({"action": "subscribe", "job_id": "nope"}))
        message = _json(ws)
    assert message["type"] == "ERROR" and message["job_id"] == "nope"
    assert "'nope'" in message["message"]


def test_a_subscribed_job_reports_progress_then_completes_with_a_report_link(cloud):
    created = requests.post(f"{cloud.api_url}/jobs", params={"processor": "profile", "filename": "x.csv"},
                            data=CSV, timeout=30, headers={"Content-Type": "text/csv",
                                                           "Authorization": f"Bearer {cloud.api_key}"})
    assert created.status_code == 202, created.text
    job_id = created.json()["job_id"]
    with connect(_signed_in(cloud), open_timeout=10) as ws:
        ws.send(json.dumps({"action": "subscribe", "job_id": job_id}))
        messages = [_json(ws)]
        while messages[-1]["type"] not in ("COMPLETE", "ERROR"):
            messages.append(_json(ws, timeout=60))
    types = [m["type"] for m in messages]
    assert types[0] == "PROGRESS" and types[-1] == "COMPLETE", types
    assert set(types) == {"PROGRESS", "COMPLETE"}
    assert {m["job_id"] for m in messages} == {job_id}
    assert messages[-2]["value"] == 100
    complete = messages[-1]
    assert complete["status"] == "completed" and complete["total_processed"] == 3
    report = requests.get(complete["download_url"], timeout=30)
    assert report.status_code == 200
    assert openpyxl.load_workbook(io.BytesIO(report.content), read_only=True).sheetnames


def test_the_management_api_sends_describes_and_closes_a_connection(cloud):
    client = _management()
    with _connected(cloud) as (ws, connection_id):
        info = client.get_connection(ConnectionId=connection_id)
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
        assert info["ConnectedAt"] <= info["LastActiveAt"]

        client.post_to_connection(ConnectionId=connection_id, Data='{"hello": "wörld"}'.encode())
        assert ws.recv(timeout=10) == '{"hello": "wörld"}'

        client.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1000
        with pytest.raises(client.exceptions.GoneException):
            client.get_connection(ConnectionId=connection_id)
    _until(lambda: connection_id not in _connections(cloud), what="$disconnect removing the item")


def test_an_unknown_connection_is_gone(cloud):
    endpoint = get_settings().ws_endpoint
    answer = requests.post(f"{endpoint}/@connections/nope", data=b"{}", timeout=10)
    assert answer.status_code == 410 and "message" in answer.json()
    client = _management()
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId="nope", Data=b"{}")
    # The app's sender reads Gone as "forget this connection".
    assert ApiGatewaySender(aws.websocket_management, endpoint).send("nope", {"type": "PROGRESS"}) is False


def test_a_message_over_128_kb_closes_the_connection_with_1009(cloud):
    with connect(_signed_in(cloud), open_timeout=10, max_size=None) as ws:
        ws.send("x" * MAX_MESSAGE_BYTES)  # at the limit: delivered (and not JSON)
        assert _json(ws)["type"] == "ERROR"
        ws.send("x" * (MAX_MESSAGE_BYTES + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1009


def test_describe_app_names_the_websocket_handlers_and_their_functions():
    app = Chalice(app_name="described")
    app.experimental_feature_flags.update(["WEBSOCKETS"])

    @app.on_ws_connect()
    def on_connect(event):
        pass

    @app.on_ws_message()
    def on_message(event):
        pass

    config = {"stages": {"dev": {"lambda_functions": {"websocket_message": {"lambda_timeout": 5}}}}}
    description = describe_app(app, config, chalice_stage="dev", local_stage="local")
    assert description.websocket == WebsocketRoutes(connect="on_connect", message="on_message")
    assert description.functions["on_message"].function_name == "described-local-websocket_message"
    assert description.functions["on_message"].timeout_s == 5
    assert description.functions["on_connect"].function_name == "described-local-websocket_connect"


@pytest.mark.parametrize("reply, refused", [
    (Invocation(True, {"statusCode": 200}), False),
    (Invocation(True, None), False),  # no reply: accepted
    (Invocation(True, {"statusCode": 302}), False),
    (Invocation(True, {"statusCode": "401"}), True),
    (Invocation(True, {"statusCode": "teapot"}), True),
    (Invocation(False, None, "Sandbox.Timedout", "Task timed out"), True),
])
def test_how_a_connect_reply_is_read(reply, refused):
    assert (refusal(reply) is not None) == refused


# -- a tiny app of its own --------------------------------------------------------------

TINY_APP = textwrap.dedent('''
    import json, os, time

    import boto3
    from chalice import Chalice

    app = Chalice(app_name="tiny")
    app.experimental_feature_flags.update(["WEBSOCKETS"])
    _client = None


    def _record(event):
        with open(os.environ["TINY_EVENTS"], "a") as out:
            out.write(json.dumps(event.to_dict()) + "\\n")


    def _push(connection_id, text):
        global _client
        _client = _client or boto3.client("apigatewaymanagementapi",
                                          endpoint_url=os.environ["SLUICE_WS_ENDPOINT"])
        _client.post_to_connection(ConnectionId=connection_id, Data=text.encode())


    @app.on_ws_connect()
    def ws_connect(event):
        query = event.to_dict().get("queryStringParameters") or {}
        if "refuse" in query:
            return {"statusCode": 401}
        if "fail" in query:
            raise RuntimeError("connect failed")
        _record(event)


    @app.on_ws_message()
    def ws_message(event):
        if event.body == "fail":
            raise RuntimeError("message failed")
        # "<text> <seconds>": answer <text> after <seconds>.
        text, _, seconds = event.body.partition(" ")
        time.sleep(float(seconds or 0))
        _push(event.connection_id, event.connection_id if text == "whoami" else text)


    @app.on_ws_disconnect()
    def ws_disconnect(event):
        _record(event)
''')


class Tiny:
    def __init__(self, gateway: WebSocketGateway, pool: LambdaPool, events_path):
        self.gateway, self.pool, self._events_path = gateway, pool, events_path
        self.management = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1",
        ).client("apigatewaymanagementapi", endpoint_url=gateway.endpoint)

    def events(self, **context) -> list[dict]:
        """What the app recorded, of events whose requestContext has these values."""
        lines = self._events_path.read_text().splitlines() if self._events_path.exists() else []
        return [e for e in map(json.loads, lines)
                if all(e["requestContext"][k] == v for k, v in context.items())]

    def wait_events(self, count: int, **context) -> list[dict]:
        return _until(lambda: len(found := self.events(**context)) >= count and found,
                      what=f"{count} events recorded for {context}")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Iterator[Tiny]:
    app_dir = tmp_path_factory.mktemp("tiny_app")
    (app_dir / "app.py").write_text(TINY_APP)
    events_path = app_dir / "events.jsonl"
    gateway = WebSocketGateway(port=0, stage="tiny")
    gateway.bind()
    pool = LambdaPool(app_dir, workers=2, log_level=logging.WARNING, environment={
        **gateway.environment(), "TINY_EVENTS": str(events_path), "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"})
    try:
        pool.start()
        gateway.start(pool)
        yield Tiny(gateway, pool, events_path)
    finally:
        gateway.stop()
        pool.stop()


def _whoami(ws: ClientConnection) -> str:
    ws.send("whoami")
    return ws.recv(timeout=10)


@pytest.mark.parametrize("query", ["refuse=1", "fail=1"])
def test_a_connect_handler_that_refuses_or_fails_gets_403_before_the_upgrade(tiny, query):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{tiny.gateway.url}/?{query}", open_timeout=10)
    assert refused.value.response.status_code == 403


def test_the_connect_event_is_shaped_as_api_gateway_sends_it(tiny):
    with connect(f"{tiny.gateway.url}/?token=abc&token=def", open_timeout=10,
                 additional_headers={"X-Api-Key": "k"}) as ws:
        connection_id = _whoami(ws)
    connected, _ = tiny.wait_events(2, connectionId=connection_id)
    context = connected["requestContext"]
    assert context["routeKey"] == "$connect" and context["eventType"] == "CONNECT"
    assert context["connectionId"] == connection_id and context["apiId"] == "local"
    assert context["stage"] == "tiny" and context["domainName"] == f"127.0.0.1:{tiny.gateway.port}"
    assert context["identity"]["sourceIp"] == "127.0.0.1" and context["requestId"]
    assert isinstance(context["connectedAt"], int)
    assert connected["queryStringParameters"] == {"token": "def"}
    assert connected["multiValueQueryStringParameters"] == {"token": ["abc", "def"]}
    assert connected["headers"]["X-Api-Key"] == "k"
    assert connected["multiValueHeaders"]["X-Api-Key"] == ["k"]


def test_messages_are_handled_in_order_and_the_gateway_keeps_answering_meanwhile(tiny):
    with connect(tiny.gateway.url, open_timeout=10) as ws:
        connection_id = _whoami(ws)
        # Later messages finish sooner: run side by side on the two workers,
        # they would come back reversed.
        for n in range(6):
            ws.send(f"m{n} {0.05 * (5 - n):.2f}")
        assert [ws.recv(timeout=10) for _ in range(6)] == [f"m{n}" for n in range(6)]

        ws.send("slow 1.5")
        started = time.monotonic()
        tiny.management.get_connection(ConnectionId=connection_id)
        assert time.monotonic() - started < 0.5, "a running handler held up the management API"
        assert ws.recv(timeout=10) == "slow"


def test_a_failing_message_handler_answers_internal_server_error(tiny):
    with connect(tiny.gateway.url, open_timeout=10) as ws:
        connection_id = _whoami(ws)
        ws.send("fail")
        answer = json.loads(ws.recv(timeout=10))
        assert answer["message"] == "Internal server error"
        assert answer["connectionId"] == connection_id and answer["requestId"]
        ws.send("still-here")
        assert ws.recv(timeout=10) == "still-here"


def test_a_client_close_invokes_disconnect_with_its_code(tiny):
    with connect(tiny.gateway.url, open_timeout=10) as ws:
        connection_id = _whoami(ws)
        ws.close(code=4000)
    _, disconnected = tiny.wait_events(2, connectionId=connection_id)
    context = disconnected["requestContext"]
    assert context["routeKey"] == "$disconnect" and context["eventType"] == "DISCONNECT"
    assert context["disconnectStatusCode"] == 4000
    with pytest.raises(tiny.management.exceptions.GoneException):
        tiny.management.post_to_connection(ConnectionId=connection_id, Data=b"late")


def test_stopping_a_gateway_closes_its_connections_and_runs_disconnect(tiny):
    # A second gateway on the same workers (their pushes go to the first one).
    gateway = WebSocketGateway(port=0, stage="tiny")
    gateway.start(tiny.pool)
    try:
        with connect(gateway.url, open_timeout=10) as ws:
            (connected,) = tiny.wait_events(1, domainName=f"127.0.0.1:{gateway.port}")
            gateway.stop()
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
    finally:
        gateway.stop()
    assert closed.value.rcvd.code == 1001
    # stop() returns after the $disconnect handler ran.
    _, disconnected = tiny.events(connectionId=connected["requestContext"]["connectionId"])
    assert disconnected["requestContext"]["disconnectStatusCode"] == 1001
