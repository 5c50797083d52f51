"""local_cloud: run Sluice's whole event-driven app locally, never deployed.

`chalice local` serves REST routes only; S3, SQS, DynamoDB-stream and WebSocket
handlers never run there. local_cloud closes that gap without Docker or an AWS
account: moto's server as the embedded AWS on 127.0.0.1, the stack from
infra/template.yaml, an event pump that calls the app's own handlers with
Lambda-shaped events and Lambda's retry rules in a pool of worker processes, a
WebSocket gateway standing in for API Gateway's WebSocket API (its $connect,
message and $disconnect handlers, and the @connections API the app pushes
through), and Chalice's local API server.

    python -m local_cloud            # API on :8000, WebSocket on :8001, embedded AWS on :4566

    with LocalCloud(aws_port=0, api_port=0, ws_port=0) as cloud:
        requests.get(f"{cloud.api_url}/jobs/...")
        websockets.sync.client.connect(cloud.ws_url)

Modules: aws_server (moto), stack (template deploy), sources (what the app listens
to), runtime (inside a worker), lambda_pool (the workers), events (Lambda-shaped
events), pump (pollers), ws_events and ws_gateway (WebSocket API), api_server
(REST), cloud (all of it together).
"""
from local_cloud.cloud import READY_LINE, LocalCloud
from local_cloud.pump import PumpSettings

__all__ = ["LocalCloud", "PumpSettings", "READY_LINE"]
