"""The client's commands: submit a file, wait for a job, show one job, list
jobs. Each returns the process's exit code; output goes to stdout, progress
and errors to stderr."""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .client import SluiceApiError, SluiceClient
from .display import ProgressDisplay, format_jobs_table, format_status

EXIT_COMPLETED = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_COMPLETED_WITH_ERRORS = 3
EXIT_FAILED = 4

FINAL_STATUSES = {"completed", "completed_with_errors", "failed", "cancelled"}
FIRST_POLL_S = 0.5
LONGEST_POLL_S = 2.0
# What a finished job's outputs are saved as, in --out DIR: <job id>-<name>.
OUTPUT_FILES = {"result": "result.json", "report": "report.xlsx", "rows": "rows.csv"}


class UsageError(Exception):
    """The command line or the local input is wrong; nothing was sent."""


# -- pure parts -----------------------------------------------------------

def _json_or_text(raw: str) -> Any:
    def no_constants(name: str) -> Any:
        # NaN and Infinity are not JSON: the API would refuse the request.
        raise ValueError(name)

    try:
        return json.loads(raw, parse_constant=no_constants)
    except ValueError:
        return raw


def parse_option(text: str) -> tuple[str, Any]:
    """`--option key=value`: the value as JSON when it parses (true, 3, 0.9,
    [..], {..}, "quoted"), else the text as it is."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--option {text!r}: write it as key=value, e.g. --option dayfirst=true")
    return key.strip(), _json_or_text(raw)


def build_options(options_json: str | None, pairs: list[str]) -> dict[str, Any]:
    """--options-json as the base, each --option over it."""
    options: dict[str, Any] = {}
    if options_json:
        try:
            options = json.loads(options_json)
        except ValueError as exc:
            raise UsageError(f"--options-json is not valid JSON: {exc}") from None
        if not isinstance(options, dict):
            raise UsageError(f"--options-json must be a JSON object, got {type(options).__name__}")
    for pair in pairs:
        key, value = parse_option(pair)
        options[key] = value
    return options


def exit_code_for_status(status: str) -> int:
    if status == "completed_with_errors":
        return EXIT_COMPLETED_WITH_ERRORS
    if status in ("failed", "cancelled"):
        return EXIT_FAILED
    return EXIT_COMPLETED


def exit_code_for_error(exc: Exception) -> int:
    """A request the API refused as wrong (400: bad input, 404: no such job)
    is a usage error; everything else is the API's or the network's."""
    if isinstance(exc, UsageError):
        return EXIT_USAGE
    if isinstance(exc, SluiceApiError) and exc.status in (400, 404):
        return EXIT_USAGE
    return EXIT_API_ERROR


def check_input_file(path: Path) -> None:
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if path.is_dir():
        raise UsageError(f"{path} is a directory; give one file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{path}: not readable (permission denied)")
    if path.stat().st_size == 0:
        # The presigned POST takes 1 byte at least: an empty file would leave
        # a job waiting for an upload that S3 refuses.
        raise UsageError(f"{path} is empty")


def prepare_out_dir(out_dir: Path | None) -> None:
    """Makes --out DIR before anything is sent: a job whose outputs cannot be
    saved is better not started."""
    if out_dir is None:
        return
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file, not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out_dir}: {exc.strerror}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out_dir}: not writable (permission denied)")


# -- commands -----------------------------------------------------------------

def submit(client: SluiceClient, path: Path, *, processor: str | None, options: dict[str, Any],
           callback_url: str | None, wait: bool, out_dir: Path | None, as_json: bool) -> int:
    check_input_file(path)
    prepare_out_dir(out_dir)
    created = client.create_upload(path.name, processor, options, callback_url)
    job_id = created["job_id"]
    client.upload(created["upload"], path)
    uploaded = f"job {job_id}: {path.name} uploaded ({path.stat().st_size:,} bytes)"
    if not (wait or out_dir):
        if as_json:
            _print_json({"job_id": job_id, "status": created["status"], "links": created["links"]})
        else:
            print(uploaded)
            print(f"follow it with: python -m sluice wait {job_id}")
        return EXIT_COMPLETED
    if not as_json:
        print(uploaded, flush=True)
    return wait_for(client, job_id, out_dir=out_dir, as_json=as_json)


def wait_for(client: SluiceClient, job_id: str, *, out_dir: Path | None, as_json: bool) -> int:
    """Polls the job until it is final, then saves its outputs to `out_dir`."""
    prepare_out_dir(out_dir)
    display = ProgressDisplay(sys.stderr)
    try:
        job = poll_until_final(client, job_id, display.update)
    except KeyboardInterrupt:
        display.close()
        print(f"sluice: stopped waiting; the job goes on: python -m sluice wait {job_id}", file=sys.stderr)
        raise
    finally:
        display.close()
    files = download_outputs(client, job, out_dir) if out_dir is not None else {}
    if as_json:
        _print_json({**job, **({"files": {k: str(v) for k, v in files.items()}} if files else {})})
    else:
        print(format_status(job, client.base_url))
        for name, path in files.items():
            print(f"saved {name}: {path}")
    if job["status"] == "failed":
        print(f"sluice: job {job_id} failed: {job.get('error') or 'no reason given'}", file=sys.stderr)
    elif job["status"] == "cancelled":
        print(f"sluice: job {job_id} was cancelled", file=sys.stderr)
    return exit_code_for_status(job["status"])


def poll_until_final(client: SluiceClient, job_id: str, show: Callable[[dict], None]) -> dict[str, Any]:
    """GET /jobs/{id} until the job is final: every 0.5 s while it moves,
    slowing to every 2 s while it does not (429s are waited out by the client)."""
    interval, last_seen = FIRST_POLL_S, None
    while True:
        job = client.get_job(job_id)
        show(job)
        if job["status"] in FINAL_STATUSES:
            return job
        seen = (job["status"], job.get("progress"))
        interval = FIRST_POLL_S if seen != last_seen else min(interval * 1.5, LONGEST_POLL_S)
        last_seen = seen
        client.sleep(interval)


def download_outputs(client: SluiceClient, job: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Saves a completed job's result, report and row file (those it has)
    as <out_dir>/<job id>-result.json, -report.xlsx, -rows.csv."""
    if job["status"] not in ("completed", "completed_with_errors"):
        return {}
    produced = set(job.get("outputs") or {}) | {"result"}
    files = {}
    for name, suffix in OUTPUT_FILES.items():
        link = job.get("links", {}).get(name)
        if link and name in produced:
            files[name] = client.download(link, out_dir / f"{job['job_id']}-{suffix}")
    return files


def status(client: SluiceClient, job_id: str, *, as_json: bool) -> int:
    job = client.get_job(job_id)
    if as_json:
        _print_json(job)
    else:
        print(format_status(job, client.base_url))
    return EXIT_COMPLETED


def jobs(client: SluiceClient, *, limit: int, as_json: bool) -> int:
    listed = client.list_jobs(limit)
    if as_json:
        _print_json(listed)
    else:
        print(format_jobs_table(listed))
    return EXIT_COMPLETED


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


__all__ = [
    "EXIT_API_ERROR", "EXIT_COMPLETED", "EXIT_COMPLETED_WITH_ERRORS", "EXIT_FAILED", "EXIT_USAGE",
    "UsageError", "build_options", "exit_code_for_error", "exit_code_for_status",
    "jobs", "parse_option", "status", "submit", "wait_for",
]
