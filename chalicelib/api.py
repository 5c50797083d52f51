"""What the REST routes do, apart from Chalice: each function takes plain
arguments and returns (HTTP status, JSON body[, headers]).

Every route that touches a job takes the caller's tenant (from its API key):
a job of another tenant answers exactly as a job that does not exist."""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from .auth.keys import bearer_token
from .auth.tickets import TICKET_SECONDS, issue_ticket
from .jobs import outputs
from .jobs.cancel import cancel_open_job
from .jobs.dispatch import new_job, store_upload, upload_metadata
from .jobs.model import InputError, Job, JobConflictError, JobNotFoundError, JobStatus, job_links
from .jobs.pipeline import Pipeline
from .jobs.retry import retry_failed_chunks
from .limits.limiter import RateLimiter
from .observability import metrics
from .processors import get_processor, processor_names
from .sources.sniff import SAMPLE_BYTES, describe_kind, sniff_kind

Response = tuple[int, dict[str, Any]]

# Bigger results are handed out as a presigned link rather than through Lambda,
# whose responses stop at 6 MB.
INLINE_RESULT_BYTES = 5 * 1024 * 1024


def create_job_from_body(pipe: Pipeline, body: bytes, query: Mapping[str, str],
                         content_type: str, tenant: str) -> Response:
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
        processor = query.get("processor") or "profile"
        refused = _refused_content(processor, body)
        if refused:
            return 422, {"error": refused}
        job = new_job(pipe, query.get("filename", ""), processor, options, tenant=tenant,
                      callback_url=query.get("callback_url"))
    except InputError as exc:
        return 400, {"error": str(exc)}
    store_upload(pipe, job, body, content_type)
    return 202, {"job_id": job.job_id, "status": job.status.value, "links": job_links(job.job_id)}


# What the bytes of an accepted file are, in words.
_KIND_WORDS = {"csv": "CSV or text", "xlsx": "an Excel workbook (.xlsx)", "zip": "a zip archive",
               "tiff": "a TIFF image", "pdf": "a PDF document"}


def _refused_content(processor_name: str, body: bytes) -> str | None:
    """Why the body is not a file the processor reads, judged by its first
    bytes (never its name or Content-Type), or None when it is one."""
    processor = get_processor(processor_name)
    kind = sniff_kind(body[:SAMPLE_BYTES])
    if kind in processor.input_kinds:
        return None
    wanted = " or ".join(_KIND_WORDS[k] for k in processor.input_kinds)
    found = _KIND_WORDS.get(kind) or describe_kind(kind)
    return f"the file is {found}; the {processor_name} processor reads {wanted}"


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


def create_presigned_upload(pipe: Pipeline, request: Any, tenant: str) -> Response:
    if not isinstance(request, dict):
        return 400, {"error": 'send a JSON object: {"filename": ..., "processor": ..., "options": {...}}'}
    options = request.get("options") or {}
    if not isinstance(options, dict):
        return 400, {"error": "'options' must be a JSON object"}
    try:
        job = new_job(pipe, request.get("filename", ""), request.get("processor") or "profile", options,
                      tenant=tenant, callback_url=request.get("callback_url"))
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


def own_job(pipe: Pipeline, job_id: str, tenant: str) -> Job | Response:
    """The tenant's job, or the 404 that a missing job gets: another
    tenant's job is not there for this caller."""
    try:
        job = pipe.store.get_job(job_id)
    except JobNotFoundError:
        job = None
    if job is None or job.tenant != tenant:
        return 404, {"error": f"no job with id {job_id!r}"}
    return job


def get_job(pipe: Pipeline, job_id: str, tenant: str) -> Response:
    job = own_job(pipe, job_id, tenant)
    if not isinstance(job, Job):
        return job
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


def list_jobs(pipe: Pipeline, query: Mapping[str, str], tenant: str) -> Response:
    try:
        limit = min(max(int(query.get("limit", 50)), 1), 200)
    except ValueError:
        return 400, {"error": "'limit' must be a whole number"}
    jobs = pipe.store.list_jobs(limit=limit, tenant=tenant)
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


def _finished_job(pipe: Pipeline, job_id: str, what: str, tenant: str) -> Job | Response:
    """The tenant's job if it completed; otherwise the answer that says why
    `what` is not there (404 unknown, 409 not final, 422 failed, 410 cancelled)."""
    job = own_job(pipe, job_id, tenant)
    if not isinstance(job, Job):
        return job
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


def get_result(pipe: Pipeline, job_id: str, tenant: str,
               link_only: bool = False) -> Response | tuple[int, dict, dict]:
    """The result JSON itself, or a 303 to a presigned link when it is too
    big for a response; with `link_only` (?link=1), the link in a 200 body."""
    job = _finished_job(pipe, job_id, "result", tenant)
    if not isinstance(job, Job):
        return job
    if link_only or pipe.blobs.head(job.result_key).size > INLINE_RESULT_BYTES:
        seconds = pipe.settings.presign_seconds
        filename = outputs.download_name(job, "result.json")
        url = pipe.blobs.presign_get(job.result_key, seconds, filename=filename)
        body = {"job_id": job_id, "status": job.status.value, "download_url": url, "filename": filename,
                "expires_in": seconds}
        return (200, body, {}) if link_only else (303, body, {"Location": url})
    return 200, json.loads(pipe.blobs.get(job.result_key))


XLSX = outputs.XLSX


# The job's files, by route name: (media type, download name suffix).
DOWNLOADS = {"report": (XLSX, "report.xlsx"), "rows": ("text/csv", "rows.csv"),
             "pdf": ("application/pdf", "npi.pdf")}


def get_download(pipe: Pipeline, job_id: str, name: str, tenant: str, accept: str = "",
                 link_only: bool = False) -> tuple[int, Any, dict[str, str]]:
    """One of the job's files (the Excel report, every row's output as CSV,
    a pages job's PDF): a 302 to a presigned S3 link; the bytes when the
    caller asks for the file's type in Accept and it fits a response; or,
    with `link_only` (?link=1), the link in a 200 JSON body, for a browser
    that must send its key to the API but cannot send it to S3."""
    media_type, suffix = DOWNLOADS[name]
    job = _finished_job(pipe, job_id, name, tenant)
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
    seconds = pipe.settings.presign_seconds
    url = pipe.blobs.presign_get(key, seconds, filename=filename)
    body = {"job_id": job_id, "download_url": url, "filename": filename, "expires_in": seconds}
    return (200, body, {}) if link_only else (302, body, {"Location": url})


# -- retry and cancel ---------------------------------------------------------

def retry_job(pipe: Pipeline, job_id: str, tenant: str) -> Response:
    """Run a finished job's failed chunks again (409 says why it cannot)."""
    job = own_job(pipe, job_id, tenant)
    if not isinstance(job, Job):
        return job
    try:
        reopened, chunks = retry_failed_chunks(pipe, job)
    except JobConflictError as exc:
        return 409, {"error": str(exc), "status": job.status.value}
    return 202, {"job_id": job_id, "status": reopened.status.value, "chunks_retried": chunks,
                 "links": job_links(job_id)}


def cancel_job(pipe: Pipeline, job_id: str, tenant: str) -> Response:
    """Cancel a job that has not ended (409 for one that has)."""
    job = own_job(pipe, job_id, tenant)
    if not isinstance(job, Job):
        return job
    try:
        cancelled = cancel_open_job(pipe, job)
    except JobConflictError as exc:
        return 409, {"error": str(exc), "status": pipe.store.get_job(job_id).status.value}
    return 200, cancelled.to_public()


def issue_live_ticket(pipe: Pipeline, authorization: str | None, now: int) -> Response:
    """A one-time ticket to open the WebSocket with, in place of the key the
    caller presented (the authorizer accepted it before this runs)."""
    ticket = issue_ticket(pipe.tickets, bearer_token(authorization) or "", now)
    answer = {"ticket": ticket, "expires_in": TICKET_SECONDS}
    if pipe.settings.ws_url:
        answer["url"] = f"{pipe.settings.ws_url}?{urlencode({'ticket': ticket})}"
    return 201, answer


def get_metrics(pipe: Pipeline, tenant: str) -> Response:
    """The caller's own figures (its tenant's chunks and jobs) in a local run;
    on AWS a pointer to CloudWatch, whose metrics span every tenant."""
    return 200, metrics.figures(pipe.settings, tenant)


# -- throttling -------------------------------------------------------------

def client_id(context: Mapping[str, Any] | None) -> str:
    """Who is asking: the API key the authorizer accepted (by its id, never
    the key itself), else the source address API Gateway saw."""
    key_id = ((context or {}).get("authorizer") or {}).get("key_id")
    if key_id:
        return f"key-{key_id}"
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
