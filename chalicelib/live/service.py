"""Live progress: WebSocket connections, subscriptions, and pushing messages.

A connection follows jobs: the ones it started with `start_scan` and any it
asks for with `subscribe`. Messages reach it from three places, none of which
is the WebSocket handler that took the request:

* workers, after a chunk is counted (MATCH_FOUND, ROW_ERROR): the count is
  a transaction that succeeds once per chunk, so each match is pushed once
  however often the chunk's message is delivered;
* the jobs table's stream, as counters move (PROGRESS, at most
  `live_progress_per_second` per job: a thousand chunks finishing together
  are one or two messages, not a thousand);
* the same stream when the job ends (PROGRESS 100, then COMPLETE or ERROR).

A send that finds its connection gone forgets the connection. Live messages
are a view: the job's state, result and report hold everything they say.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterable
from typing import Any

from ..auth.keys import authenticate
from ..auth.tickets import redeem_ticket
from ..jobs.dispatch import new_job, store_upload
from ..jobs.model import InputError, Job, JobNotFoundError, JobStatus
from ..jobs.outputs import report_filename
from ..jobs.pipeline import Pipeline
from ..limits.limiter import RateLimiter
from . import messages

log = logging.getLogger(__name__)

# Row errors pushed per chunk; the report's Errors sheet has them all.
LIVE_ROW_ERRORS_PER_CHUNK = 50
CONNECTION_TTL_S = 24 * 3600


def publish(pipe: Pipeline, job_id: str, outgoing: list[dict[str, Any]]) -> int:
    """Send `outgoing` to every connection following the job; returns the
    number of connections reached."""
    if not outgoing:
        return 0
    reached = 0
    try:
        for connection_id in pipe.connections.subscribers(job_id):
            if all(pipe.live.send(connection_id, m) for m in outgoing):
                reached += 1
            else:
                # Gone (closed without a $disconnect reaching us, or expired):
                # forget the connection and everything it followed.
                disconnect(pipe, connection_id)
                pipe.connections.unsubscribe(job_id, connection_id)
    except Exception:  # noqa: BLE001 - a view must never fail the work it shows
        log.warning("live messages for job %s not pushed", job_id, exc_info=True,
                    extra={"job_id": job_id})
    return reached


def publish_chunk_events(pipe: Pipeline, job_id: str, events: list[dict[str, Any]]) -> int:
    outgoing = [messages.match_found(job_id, _without_type(e)) for e in events if e["type"] == "match"]
    errors = [e for e in events if e["type"] == "row_error"][:LIVE_ROW_ERRORS_PER_CHUNK]
    outgoing += [messages.row_error(job_id, _without_type(e)) for e in errors]
    return publish(pipe, job_id, outgoing)


def _without_type(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "type"}


def announce_job_changes(pipe: Pipeline, changes: Iterable[tuple[str | None, Job | None]]) -> None:
    """PROGRESS while a job runs (throttled), and its end."""
    for before, job in changes:
        if job is None or not job.chunks_total and not job.status.is_final:
            continue
        if job.status.is_final:
            if before is not None and JobStatus(before).is_final:
                continue
            publish(pipe, job.job_id, [messages.progress(job), _ending(pipe, job)])
        elif _progress_allowed(pipe, job.job_id):
            publish(pipe, job.job_id, [messages.progress(job)])


def _progress_allowed(pipe: Pipeline, job_id: str) -> bool:
    limiter = RateLimiter(pipe.limits, f"progress#{job_id}", pipe.settings.live_progress_per_second, 1)
    return limiter.try_acquire().allowed


def _ending(pipe: Pipeline, job: Job) -> dict[str, Any]:
    if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        return messages.error(job.error or f"the job was {job.status.value}", job.job_id)
    report = job.outputs.get("report")
    url = pipe.blobs.presign_get(report, pipe.settings.presign_seconds,
                                 filename=report_filename(job)) if report else None
    return messages.complete(job, url)


# -- the WebSocket handlers' work ------------------------------------------------

def connect(pipe: Pipeline, connection_id: str, source_ip: str, api_key: str | None, epoch: int,
            ticket: str | None = None) -> bool:
    """Accept the connection when it presents a one-time ticket from
    POST /live/tickets (`?ticket=`), or a live API key (`?api_key=`, for
    clients that do not mind the key in a URL); the connection then acts for
    that tenant only. A browser cannot set headers on a WebSocket."""
    key = redeem_ticket(pipe.tickets, pipe.keys, ticket, epoch) if ticket else \
        authenticate(pipe.keys, api_key, epoch)
    if key is None:
        return False
    pipe.connections.add(connection_id, {"source_ip": source_ip, "tenant": key.tenant},
                         epoch + CONNECTION_TTL_S)
    return True


def disconnect(pipe: Pipeline, connection_id: str) -> None:
    for job_id in pipe.connections.remove(connection_id):
        pipe.connections.unsubscribe(job_id, connection_id)


def handle_message(pipe: Pipeline, connection_id: str, body: str, epoch: int) -> None:
    """One client message; every answer goes down the connection, an ERROR
    when the request is wrong."""
    try:
        request = json.loads(body)
        if not isinstance(request, dict):
            raise ValueError
    except ValueError:
        pipe.live.send(connection_id, messages.error('send a JSON object such as '
                                                     '{"action": "subscribe", "job_id": "..."}'))
        return
    action = request.get("action")
    # Only a connection that came in with a key is stored; one that expired
    # (24 h) or was dropped has no tenant to act for.
    tenant = (pipe.connections.get(connection_id) or {}).get("tenant")
    try:
        if tenant is None:
            raise InputError("this connection is not signed in; connect again with ?ticket=<ticket> "
                             "(POST /live/tickets) or ?api_key=<key>")
        if action == "subscribe":
            _subscribe(pipe, connection_id, tenant, str(request.get("job_id") or ""), epoch)
        elif action == "unsubscribe":
            pipe.connections.unsubscribe(str(request.get("job_id") or ""), connection_id)
        elif action == "start_scan":
            _start(pipe, connection_id, tenant, request, epoch)
        else:
            raise InputError(f"unknown action {action!r}; use start_scan, subscribe or unsubscribe")
    except InputError as exc:
        pipe.live.send(connection_id, messages.error(str(exc), request.get("job_id")))


def _subscribe(pipe: Pipeline, connection_id: str, tenant: str, job_id: str, epoch: int) -> None:
    try:
        job = pipe.store.get_job(job_id)
    except JobNotFoundError:
        job = None
    if job is None or job.tenant != tenant:  # another tenant's job is not there for this caller
        raise InputError(f"no job with id {job_id!r}")
    pipe.connections.subscribe(job_id, connection_id, epoch + CONNECTION_TTL_S)
    now = [messages.progress(job)]
    if job.status.is_final:
        now.append(_ending(pipe, job))
    for message in now:
        pipe.live.send(connection_id, message)


def _start(pipe: Pipeline, connection_id: str, tenant: str, request: dict[str, Any], epoch: int) -> None:
    """Seed 001's start_scan: the file comes base64 in the message (WebSocket
    frames stop at 128 KB on API Gateway: larger files go through POST
    /uploads, then `subscribe`)."""
    try:
        data = base64.b64decode(request.get("file_content") or "", validate=True)
    except (binascii.Error, ValueError):
        raise InputError("file_content must be the file, base64-encoded") from None
    if not data:
        raise InputError("file_content is empty; send the file base64-encoded")
    options = dict(request.get("options") or {})
    if "target_hole_codes" in request:
        options["target_hole_codes"] = request["target_hole_codes"]
    job = new_job(pipe, request.get("file_name") or request.get("filename") or "scan.zip",
                  request.get("processor") or "scan", options, tenant=tenant,
                  callback_url=request.get("callback_url"))
    pipe.connections.subscribe(job.job_id, connection_id, epoch + CONNECTION_TTL_S)
    pipe.live.send(connection_id, messages.started(job))
    store_upload(pipe, job, data, "application/octet-stream")
