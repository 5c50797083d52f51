"""What the REST routes do, apart from Chalice: each function takes plain
arguments and returns (HTTP status, JSON body[, headers])."""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from .jobs import outputs
from .jobs.dispatch import new_job, store_upload, upload_metadata
from .jobs.model import InputError, Job, JobNotFoundError, JobStatus, job_links
from .jobs.pipeline import Pipeline
from .limits.limiter import RateLimiter
from .processors import get_processor, processor_names

Response = tuple[int, dict[str, Any]]

# Bigger results are handed out as a presigned link rather than through Lambda,
# whose responses stop at 6 MB.
INLINE_RESULT_BYTES = 5 * 1024 * 1024


def create_job_from_body(pipe: Pipeline, body: bytes, query: Mapping[str, str],
                         content_type: str) -> Response:
    limit = pipe.settings.api_max_body_bytes
    if len(body) > limit:
        return 413, {
            "error": f"the body is {len(body)} bytes; this route takes at most {limit}. "
                     "For larger files ask POST /uploads for a presigned upload.",
            "next": "/uploads",
        }
    if not body:
        return 400, {"error": "the request body is empty; send the file as the raw body"}
    try:
        options = _options_from_query(query)
        job = new_job(pipe, query.get("filename", ""), query.get("processor") or "profile", options,
                      callback_url=query.get("callback_url"))
    except InputError as exc:
        return 400, {"error": str(exc)}
    store_upload(pipe, job, body, content_type)
    return 202, {"job_id": job.job_id, "status": job.status.value, "links": job_links(job.job_id)}


def _options_from_query(query: Mapping[str, str]) -> dict[str, Any]:
    raw = query.get("options")
    if not raw:
        return {}
    try:
        options = json.loads(raw)
    except ValueError:
        raise InputError("the 'options' query parameter must be a JSON object") from None
    if not isinstance(options, dict):
        raise InputError("the 'options' query parameter must be a JSON object")
    return options


def create_presigned_upload(pipe: Pipeline, request: Any) -> Response:
    if not isinstance(request, dict):
        return 400, {"error": 'send a JSON object: {"filename": ..., "processor": ..., "options": {...}}'}
    options = request.get("options") or {}
    if not isinstance(options, dict):
        return 400, {"error": "'options' must be a JSON object"}
    try:
        job = new_job(pipe, request.get("filename", ""), request.get("processor") or "profile", options,
                      callback_url=request.get("callback_url"))
    except InputError as exc:
        return 400, {"error": str(exc)}
    seconds = pipe.settings.presign_seconds
    post = pipe.blobs.presign_post(job.source_key, pipe.settings.upload_max_bytes,
                                   upload_metadata(job), seconds)
    return 201, {
        "job_id": job.job_id,
        "status": job.status.value,
        "upload": {"url": post["url"], "fields": post["fields"], "method": "POST",
                   "max_bytes": pipe.settings.upload_max_bytes, "expires_in": seconds},
        "links": job_links(job.job_id),
    }


def get_job(pipe: Pipeline, job_id: str) -> Response:
    try:
        job = pipe.store.get_job(job_id)
    except JobNotFoundError as exc:
        return 404, {"error": str(exc)}
    body = job.to_public()
    # A processor may show the job in its seed's own terms too (pages: seed
    # 002's METADATA and BATCH#n records, from the job's chunk records).
    view = getattr(_processor_or_none(job.processor), "job_view", None)
    if view is not None:
        body.update(view(job, pipe.store.list_chunks(job_id)))
    return 200, body


def _processor_or_none(name: str) -> Any:
    try:
        return get_processor(name)
    except InputError:
        return None


def list_jobs(pipe: Pipeline, query: Mapping[str, str]) -> Response:
    try:
        limit = min(max(int(query.get("limit", 50)), 1), 200)
    except ValueError:
        return 400, {"error": "'limit' must be a whole number"}
    jobs = pipe.store.list_jobs(limit=limit)
    return 200, {"jobs": [job.to_public() for job in jobs], "processors": processor_names()}


def list_processors() -> Response:
    """Every processor with a line saying what it does and the options it
    takes, so a client (the dashboard) can build its form. A processor that
    describes nothing is listed with no options."""
    return 200, {"processors": [_describe(get_processor(name)) for name in processor_names()]}


def _describe(processor: Any) -> dict[str, Any]:
    options = []
    for option in getattr(processor, "options_help", None) or []:
        described = {"name": option["name"], "type": option.get("type", "string"),
                     "default": option.get("default"), "help": option.get("help", ""),
                     "advanced": bool(option.get("advanced"))}
        if option.get("choices"):
            described["choices"] = list(option["choices"])
        options.append(described)
    return {"name": processor.name, "description": getattr(processor, "description", ""),
            "item_label": getattr(processor, "item_label", "chunks"), "options": options}


def _finished_job(pipe: Pipeline, job_id: str, what: str) -> Job | Response:
    """The job if it completed; otherwise the answer that says why `what`
    is not there (404 unknown, 409 not final, 422 failed, 410 cancelled)."""
    try:
        job = pipe.store.get_job(job_id)
    except JobNotFoundError as exc:
        return 404, {"error": str(exc)}
    if not job.status.is_final:
        return 409, {
            "error": f"job {job_id} is {job.status.value}; its {what} is ready when it is final",
            "status": job.status.value,
            "progress": job.to_public()["progress"],
        }
    if job.status == JobStatus.FAILED:
        return 422, {"job_id": job_id, "status": job.status.value, "error": job.error}
    if job.status == JobStatus.CANCELLED:
        return 410, {"job_id": job_id, "status": job.status.value, "error": "the job was cancelled"}
    return job


def get_result(pipe: Pipeline, job_id: str) -> Response | tuple[int, dict, dict]:
    job = _finished_job(pipe, job_id, "result")
    if not isinstance(job, Job):
        return job
    size = pipe.blobs.head(job.result_key).size
    if size > INLINE_RESULT_BYTES:
        url = pipe.blobs.presign_get(job.result_key, pipe.settings.presign_seconds)
        return 303, {"job_id": job_id, "status": job.status.value, "download_url": url}, {"Location": url}
    return 200, json.loads(pipe.blobs.get(job.result_key))


XLSX = outputs.XLSX


def get_report(pipe: Pipeline, job_id: str, accept: str) -> tuple[int, Any, dict[str, str]]:
    """The Excel report: a 302 to a presigned S3 link, or the bytes when the
    caller asks for the spreadsheet type in Accept and it fits a response."""
    return _download(pipe, job_id, "report", XLSX, accept, "report.xlsx")


def get_rows(pipe: Pipeline, job_id: str, accept: str) -> tuple[int, Any, dict[str, str]]:
    """Every row's output as one CSV (processors that answer per row)."""
    return _download(pipe, job_id, "rows", "text/csv", accept, "rows.csv")


def get_pdf(pipe: Pipeline, job_id: str, accept: str) -> tuple[int, Any, dict[str, str]]:
    """The PDF a pages job made (options.pdf): the NPI pages listed in front
    of the document's own pages."""
    return _download(pipe, job_id, "pdf", "application/pdf", accept, "npi.pdf")


def _download(pipe: Pipeline, job_id: str, name: str, media_type: str, accept: str,
              suffix: str) -> tuple[int, Any, dict[str, str]]:
    job = _finished_job(pipe, job_id, name)
    if not isinstance(job, Job):
        return (*job, {})
    key = job.outputs.get(name)
    if key is None:
        return 404, {"error": f"a {job.processor} job has no {name} output"}, {}
    filename = outputs.download_name(job, suffix)
    if media_type in (accept or ""):
        size = pipe.blobs.head(key).size
        if size <= INLINE_RESULT_BYTES:
            return 200, pipe.blobs.get(key), {
                "Content-Type": media_type,
                "Content-Disposition": f'attachment; filename="{filename}"'}
    url = pipe.blobs.presign_get(key, pipe.settings.presign_seconds, filename=filename)
    return 302, {"job_id": job_id, "download_url": url}, {"Location": url}


# -- throttling -------------------------------------------------------------

def client_id(headers: Mapping[str, str], context: Mapping[str, Any] | None) -> str:
    """Who is asking: the API key when the caller sends one (hashed, so no
    key is stored), else the source address API Gateway saw."""
    key = headers.get("x-api-key")
    if key:
        return "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]
    identity = (context or {}).get("identity") or {}
    return "ip-" + str(identity.get("sourceIp") or "unknown")


def throttle(pipe: Pipeline, client: str) -> tuple[int, dict, dict] | None:
    """None when the client may ask again; a 429 answer when it asked too often."""
    settings = pipe.settings
    limiter = RateLimiter(pipe.limits, f"status#{client}", settings.status_queries_per_window,
                          settings.status_window_seconds)
    decision = limiter.try_acquire()
    if decision.allowed:
        return None
    wait = max(1, math.ceil(decision.retry_after))
    return 429, {
        "error": f"too many status queries: at most {settings.status_queries_per_window} every "
                 f"{settings.status_window_seconds} s per client; retry in {wait} s",
        "retry_after": wait,
    }, {"Retry-After": str(wait)}
