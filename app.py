"""Sluice: every entry point of the system on one screen.

Each handler turns its event into plain arguments and calls one function of
chalicelib; the logic lives there and runs without Chalice.
"""
import logging
import time
from urllib.parse import unquote_plus

from chalice import Chalice, Response

from chalicelib import api, dashboard
from chalicelib.adapters.dynamodb import job_change_from_stream
from chalicelib.events import run_sqs_batch
from chalicelib.jobs.dispatch import handle_uploaded_object
from chalicelib.jobs.finish import aggregate_job
from chalicelib.jobs.model import ChunkTask
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


# -- REST --------------------------------------------------------------------

@app.route("/jobs", methods=["POST"], content_types=UPLOAD_TYPES)
def create_job():
    request = app.current_request
    return _reply(api.create_job_from_body(
        get_pipeline(), request.raw_body or b"", request.query_params or {},
        request.headers.get("content-type", ""),
    ))


@app.route("/uploads", methods=["POST"])
def create_upload():
    return _reply(api.create_presigned_upload(get_pipeline(), app.current_request.json_body))


# Status and result queries are counted per client (seed 000): above the
# limit the answer is 429 with Retry-After, before any other work is done.
def _throttled(answer):
    request = app.current_request
    return _reply(api.throttle(get_pipeline(), api.client_id(request.headers, request.context))
                  or answer())


@app.route("/jobs", methods=["GET"])
def list_jobs():
    return _throttled(lambda: api.list_jobs(get_pipeline(), app.current_request.query_params or {}))


@app.route("/jobs/{job_id}", methods=["GET"])
def get_job(job_id):
    return _throttled(lambda: api.get_job(get_pipeline(), job_id))


@app.route("/jobs/{job_id}/result", methods=["GET"])
def get_result(job_id):
    return _throttled(lambda: api.get_result(get_pipeline(), job_id))


@app.route("/jobs/{job_id}/report", methods=["GET"])
def get_report(job_id):
    accept = app.current_request.headers.get("accept", "")
    return _throttled(lambda: api.get_report(get_pipeline(), job_id, accept))


@app.route("/jobs/{job_id}/rows", methods=["GET"])
def get_rows(job_id):
    accept = app.current_request.headers.get("accept", "")
    return _throttled(lambda: api.get_rows(get_pipeline(), job_id, accept))


@app.route("/jobs/{job_id}/pdf", methods=["GET"])
def get_pdf(job_id):
    accept = app.current_request.headers.get("accept", "")
    return _throttled(lambda: api.get_pdf(get_pipeline(), job_id, accept))


# -- events --------------------------------------------------------------------

@app.on_s3_event(bucket=settings.bucket, events=["s3:ObjectCreated:*"], prefix="uploads/")
def handle_object_created(event):
    for record in event.to_dict()["Records"]:
        obj = record["s3"]["object"]
        handle_uploaded_object(get_pipeline(), unquote_plus(obj["key"]), obj.get("sequencer", ""))


# One chunk per invocation: a chunk is already a few MB of rows, so chunks run
# side by side on as many Lambdas as there are chunks instead of in a row.
@app.on_sqs_message(queue=settings.work_queue, batch_size=1)
def handle_work_message(event):
    return run_sqs_batch(event, lambda body: run_chunk(get_pipeline(), ChunkTask.from_message(body)))


@app.on_sqs_message(queue=settings.aggregate_queue, batch_size=1)
def handle_aggregate_message(event):
    return run_sqs_batch(event, lambda body: aggregate_job(get_pipeline(), body["job_id"]))



# A job record changed: announce final statuses on the results queue and to
# the job's callback, whichever path ended the job.
@app.on_dynamodb_record(stream_arn=settings.table_stream_arn, batch_size=100,
                        starting_position="LATEST")
def handle_job_change(event):
    changes = [job_change_from_stream(r.to_dict()) for r in event]
    announce_final_statuses(get_pipeline(), changes)
    live.announce_job_changes(get_pipeline(), changes)


@app.on_sqs_message(queue=settings.callback_queue, batch_size=1)
def handle_callback_message(event):
    return run_sqs_batch(event, lambda body: deliver_callback(get_pipeline(), body))


# -- WebSocket (seed 001) -----------------------------------------------------
# Pushes go through chalicelib's own sender (SLUICE_WS_ENDPOINT), the same
# one the workers use, rather than app.websocket_api.

@app.on_ws_connect()
def ws_connect(event):
    context = event.to_dict()["requestContext"]
    live.connect(get_pipeline(), event.connection_id,
                 (context.get("identity") or {}).get("sourceIp", ""), int(time.time()))


@app.on_ws_message()
def ws_message(event):
    live.handle_message(get_pipeline(), event.connection_id, event.body, int(time.time()))


@app.on_ws_disconnect()
def ws_disconnect(event):
    live.disconnect(get_pipeline(), event.connection_id)
