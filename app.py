"""Sluice: every entry point of the system on one screen.

Each handler turns its event into plain arguments and calls one function of
chalicelib; the logic lives there and runs without Chalice.
"""
import logging
import time
from urllib.parse import unquote_plus

from chalice import AuthResponse, Chalice, Rate, Response

from chalicelib import api, auth, dashboard, observability
from chalicelib.adapters.dynamodb import job_change_from_stream
from chalicelib.events import run_sqs_batch
from chalicelib.jobs.dead_letters import give_up_on_aggregation, give_up_on_chunk
from chalicelib.jobs.dispatch import handle_uploaded_object
from chalicelib.jobs.finish import aggregate_job
from chalicelib.jobs.lifecycle import queue_claimed_aggregations
from chalicelib.jobs.model import ChunkTask
from chalicelib.jobs.sweeper import sweep_stalled_jobs
from chalicelib.jobs.work import run_chunk
from chalicelib.live import service as live
from chalicelib.notify.delivery import deliver_callback
from chalicelib.notify.final_status import announce_final_statuses
from chalicelib.settings import get_settings
from chalicelib.wiring import get_pipeline

settings = get_settings()
app = Chalice(app_name="sluice")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.log.setLevel(logging.INFO)
# JSON logs with the job's context, X-Ray when the function traces.
observability.configure(app)
UPLOAD_TYPES = [
    "text/csv", "text/plain", "application/octet-stream", api.XLSX,
    "application/zip", "image/tiff", "application/pdf",
]
# Raw uploads must reach the handler byte for byte, whatever their encoding,
# and reports leave as bytes.
app.api.binary_types.extend(t for t in UPLOAD_TYPES if t not in app.api.binary_types)


def _reply(result):
    status, body, *headers = result
    return Response(body=body, status_code=status, headers=headers[0] if headers else None)


# -- the dashboard -------------------------------------------------------------

@app.route("/", methods=["GET"])
def dashboard_page():
    # The path GET / was asked as ("/api/" behind API Gateway's stage) is
    # where the page's relative URLs start.
    return _reply(dashboard.index_page(settings.ws_url, app.current_request.context.get("path", "/")))


@app.route("/dashboard/{name}", methods=["GET"])
def dashboard_asset(name):
    return _reply(dashboard.asset(name))


@app.route("/processors", methods=["GET"])
def list_processors():
    return _reply(api.list_processors())


# -- who is asking ----------------------------------------------------------------
# Every job route needs `Authorization: Bearer <key>`; the key names its
# tenant, and a tenant sees its own jobs only. API Gateway caches the answer
# for the ttl per key (a revoked key works that much longer): the stage's
# SLUICE_AUTHORIZER_TTL_SECONDS, 300 unless set.

@app.authorizer(ttl_seconds=settings.authorizer_ttl_seconds)
def api_key(auth_request):
    key = auth.authenticate(get_pipeline().keys, auth.bearer_token(auth_request.token), int(time.time()))
    if key is None:
        return AuthResponse(routes=[], principal_id="anonymous")
    return AuthResponse(routes=["*"], principal_id=key.tenant,
                        context={"tenant": key.tenant, "key_id": key.key_id})


def _tenant() -> str:
    return app.current_request.context["authorizer"]["tenant"]


# -- REST --------------------------------------------------------------------

@app.route("/jobs", methods=["POST"], content_types=UPLOAD_TYPES, authorizer=api_key)
def create_job():
    request = app.current_request
    return _reply(api.create_job_from_body(
        get_pipeline(), request.raw_body or b"", request.query_params or {},
        request.headers.get("content-type", ""), _tenant(),
    ))


@app.route("/uploads", methods=["POST"], authorizer=api_key)
def create_upload():
    return _reply(api.create_presigned_upload(get_pipeline(), app.current_request.json_body, _tenant()))


# Status and result queries are counted per client (seed 000): above the
# limit the answer is 429 with Retry-After, before any other work is done.
def _throttled(answer):
    return _reply(api.throttle(get_pipeline(), api.client_id(app.current_request.context)) or answer())


@app.route("/jobs", methods=["GET"], authorizer=api_key)
def list_jobs():
    query = app.current_request.query_params or {}
    return _throttled(lambda: api.list_jobs(get_pipeline(), query, _tenant()))


@app.route("/jobs/{job_id}", methods=["GET"], authorizer=api_key)
def get_job(job_id):
    return _throttled(lambda: api.get_job(get_pipeline(), job_id, _tenant()))


@app.route("/jobs/{job_id}/result", methods=["GET"], authorizer=api_key)
def get_result(job_id):
    link_only = (app.current_request.query_params or {}).get("link") in ("1", "true")
    return _throttled(lambda: api.get_result(get_pipeline(), job_id, _tenant(), link_only))


def _download(job_id, name):
    request = app.current_request
    link_only = (request.query_params or {}).get("link") in ("1", "true")
    return _throttled(lambda: api.get_download(get_pipeline(), job_id, name, _tenant(),
                                               request.headers.get("accept", ""), link_only))


@app.route("/jobs/{job_id}/report", methods=["GET"], authorizer=api_key)
def get_report(job_id):
    return _download(job_id, "report")


@app.route("/jobs/{job_id}/rows", methods=["GET"], authorizer=api_key)
def get_rows(job_id):
    return _download(job_id, "rows")


@app.route("/jobs/{job_id}/pdf", methods=["GET"], authorizer=api_key)
def get_pdf(job_id):
    return _download(job_id, "pdf")


@app.route("/jobs/{job_id}/retry", methods=["POST"], authorizer=api_key)
def retry_job(job_id):
    return _reply(api.retry_job(get_pipeline(), job_id, _tenant()))


@app.route("/jobs/{job_id}", methods=["DELETE"], authorizer=api_key)
def cancel_job(job_id):
    return _reply(api.cancel_job(get_pipeline(), job_id, _tenant()))


# A one-time ticket to open the WebSocket with (?ticket=), so the key never rides in a URL.
@app.route("/live/tickets", methods=["POST"], authorizer=api_key)
def create_live_ticket():
    return _reply(api.issue_live_ticket(get_pipeline(), app.current_request.headers.get("authorization"),
                                        int(time.time())))


# The caller's own figures in a local run; on AWS, where CloudWatch has them.
@app.route("/metrics", methods=["GET"], authorizer=api_key)
def get_metrics():
    return _throttled(lambda: api.get_metrics(get_pipeline(), _tenant()))


# -- events --------------------------------------------------------------------

@app.on_s3_event(bucket=settings.bucket, events=["s3:ObjectCreated:*"], prefix="uploads/")
def handle_object_created(event):
    for record in event.to_dict()["Records"]:
        obj = record["s3"]["object"]
        handle_uploaded_object(get_pipeline(), unquote_plus(obj["key"]), obj.get("sequencer", ""))


# One chunk per invocation: a chunk is already a few MB of rows, so chunks run
# side by side on as many Lambdas as there are chunks instead of in a row, up
# to the stage's cap. Batch sizes and caps of every SQS handler come from the
# stage's configuration (chalicelib/settings.py, QueueConsumer).
@app.on_sqs_message(queue=settings.work_queue, batch_size=settings.work_consumer.batch_size,
                    maximum_concurrency=settings.work_consumer.max_concurrency)
def handle_work_message(event):
    return run_sqs_batch(event, lambda body: run_chunk(get_pipeline(), ChunkTask.from_message(body)))


@app.on_sqs_message(queue=settings.aggregate_queue, batch_size=settings.aggregate_consumer.batch_size,
                    maximum_concurrency=settings.aggregate_consumer.max_concurrency)
def handle_aggregate_message(event):
    return run_sqs_batch(event, lambda body: aggregate_job(get_pipeline(), body["job_id"]))


# Messages the queues gave up on (maxReceiveCount deliveries): the chunk is
# failed with the last error its worker noted, or the job, for an aggregation.
@app.on_sqs_message(queue=settings.work_dlq, batch_size=settings.dead_letter_consumer.batch_size,
                    maximum_concurrency=settings.dead_letter_consumer.max_concurrency)
def handle_work_dead_letter(event):
    return run_sqs_batch(event, lambda body: give_up_on_chunk(get_pipeline(), body))


@app.on_sqs_message(queue=settings.aggregate_dlq, batch_size=settings.dead_letter_consumer.batch_size,
                    maximum_concurrency=settings.dead_letter_consumer.max_concurrency)
def handle_aggregate_dead_letter(event):
    return run_sqs_batch(event, lambda body: give_up_on_aggregation(get_pipeline(), body))


# Jobs that stopped moving are moved on or failed with a reason.
@app.schedule(Rate(5, unit=Rate.MINUTES))
def handle_sweep_timer(event):
    sweep_stalled_jobs(get_pipeline())



# A job record changed: queue again (delayed) any aggregation a worker claimed,
# in case it died before queueing it; announce final statuses on the results
# queue and to the job's callback, whichever path ended the job; and push
# live progress.
@app.on_dynamodb_record(stream_arn=settings.table_stream_arn, batch_size=100,
                        starting_position="LATEST")
def handle_job_change(event):
    changes = [job_change_from_stream(r.to_dict()) for r in event]
    queue_claimed_aggregations(get_pipeline(), changes)
    announce_final_statuses(get_pipeline(), changes)
    live.announce_job_changes(get_pipeline(), changes)
    # Last: a batch the steps above fail is delivered again, and would count twice.
    observability.record_job_endings(get_pipeline(), changes)


@app.on_sqs_message(queue=settings.callback_queue, batch_size=settings.callback_consumer.batch_size,
                    maximum_concurrency=settings.callback_consumer.max_concurrency)
def handle_callback_message(event):
    return run_sqs_batch(event, lambda body: deliver_callback(get_pipeline(), body))


# -- WebSocket (seed 001) -----------------------------------------------------
# Pushes go through chalicelib's own sender (SLUICE_WS_ENDPOINT), the same
# one the workers use, rather than app.websocket_api.

@app.on_ws_connect()
def ws_connect(event):
    raw = event.to_dict()
    query = raw.get("queryStringParameters") or {}
    accepted = live.connect(get_pipeline(), event.connection_id,
                            (raw["requestContext"].get("identity") or {}).get("sourceIp", ""),
                            query.get("api_key"), int(time.time()), ticket=query.get("ticket"))
    if not accepted:  # API Gateway refuses the connection: no socket is opened
        return Response(body={"message": "Forbidden: connect with ?ticket=<ticket from POST /live/tickets> "
                                         "or ?api_key=<key>"}, status_code=403)


@app.on_ws_message()
def ws_message(event):
    live.handle_message(get_pipeline(), event.connection_id, event.body, int(time.time()))


@app.on_ws_disconnect()
def ws_disconnect(event):
    live.disconnect(get_pipeline(), event.connection_id)
