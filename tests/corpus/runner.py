"""Running the bad-input corpus through the whole pipeline (the in-memory
one: dispatch, every chunk, aggregation), each case in a process of its own.

A case's process is forked from a server that has imported the pipeline and
its readers already, so it starts in milliseconds. It runs under a hard cap
on its address space (RLIMIT_AS: past it an allocation fails, as in a Lambda
out of memory) and is killed past its timeout. It measures its own wall time
and its peak resident memory above what it started with (VmHWM, reset at the
start through /proc/self/clear_refs), and judges the outcome itself:

- the bad job ends in the expected final status, its error or row errors
  holding the expected words, its result the expected values;
- no handler raised: a message whose handler raises is delivered again, and
  a deterministic failure would be delivered forever;
- a sound job of the same processor, dispatched and worked interleaved with
  the bad one (the bad one's first messages delivered twice), ends exactly
  as it does alone;
- nothing was written outside the two jobs' own keys; every result JSON is
  strict JSON; no report cell holds a formula.

    python -m tests.corpus CORPUS_DIR [CASE ...]    # writes the corpus there first if need be
"""
from __future__ import annotations

import io
import json
import logging
import multiprocessing
import multiprocessing.connection
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

# Imported here so that the fork server holds them and every case starts warm.
import docx  # noqa: F401
import openpyxl
import pandas  # noqa: F401
import pypdf  # noqa: F401
import pypdfium2  # noqa: F401
import pytesseract  # noqa: F401
import tifffile  # noqa: F401
from PIL import Image  # noqa: F401

from chalicelib.jobs.dispatch import handle_uploaded_object, new_job, store_upload
from chalicelib.jobs.finish import aggregate_job
from chalicelib.jobs.model import ChunkTask, InputError
from chalicelib.jobs.work import run_chunk
from tests.support.memory_pipeline import memory_pipeline

#: the address space a case may add to what its process maps at the start
ADDRESS_SPACE_BYTES = 2 * 1024**3
#: a case is killed after this many times its time budget (at least KILL_MIN_SECONDS)
KILL_FACTOR = 3
KILL_MIN_SECONDS = 30
#: delivery rounds before a job that keeps sending messages counts as a loop
MAX_ROUNDS = 20
#: the bad job's first messages are delivered twice, as SQS may
REDELIVERED = 10


def run_corpus(corpus_dir: str | Path, cases: Sequence[dict[str, Any]], good: Mapping[str, dict[str, Any]],
               workers: int = 2) -> list[dict[str, Any]]:
    """Every case's observation (see run_case), in the order of `cases`;
    at most `workers` cases run at once, the longest budgets first."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.corpus.runner"])
    order = sorted(range(len(cases)), key=lambda i: -cases[i]["seconds"])
    running: dict[int, tuple[Any, Any, float]] = {}
    observed: dict[int, dict[str, Any]] = {}
    while order or running:
        while order and len(running) < workers:
            index = order.pop(0)
            case = cases[index]
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=_child, name=f"corpus-{case['name']}",
                                      args=(case, good[case["processor"]], str(corpus_dir), send))
            process.start()
            send.close()
            running[index] = (process, receive, time.monotonic())
        ready = multiprocessing.connection.wait([r for _, r, _ in running.values()], timeout=0.2)
        for index, (process, receive, started) in list(running.items()):
            case = cases[index]
            kill_after = max(KILL_MIN_SECONDS, KILL_FACTOR * case["seconds"])
            if receive in ready:
                try:
                    observed[index] = receive.recv()
                except EOFError:  # the process died without a word: a crash
                    process.join()
                    observed[index] = _lost(case, time.monotonic() - started,
                                            f"its process died (exit code {process.exitcode})")
            elif time.monotonic() - started > kill_after:
                process.kill()
                observed[index] = _lost(case, time.monotonic() - started,
                                        f"still running after {kill_after:.0f} s: killed")
            else:
                continue
            process.join()
            receive.close()
            del running[index]
    return [_with_budgets(cases[i], observed[i]) for i in range(len(cases))]


def _lost(case: dict[str, Any], seconds: float, why: str) -> dict[str, Any]:
    return {"name": case["name"], "processor": case["processor"], "status": None, "error": None,
            "seconds": round(seconds, 2), "peak_mb": None, "chunks": None, "problems": [why]}


def _with_budgets(case: dict[str, Any], seen: dict[str, Any]) -> dict[str, Any]:
    problems = list(seen["problems"])
    if seen["seconds"] > case["seconds"]:
        problems.append(f"took {seen['seconds']:.1f} s, over its budget of {case['seconds']:g} s")
    if seen["peak_mb"] is not None and seen["peak_mb"] > case["megabytes"]:
        problems.append(f"peak memory grew by {seen['peak_mb']:.0f} MB, over its budget of "
                        f"{case['megabytes']} MB")
    return {**seen, "problems": problems, "handled": not problems}


# -- in the case's own process ----------------------------------------------------------

def _child(case: dict[str, Any], good: dict[str, Any], corpus_dir: str, send: Any) -> None:
    logging.disable(logging.CRITICAL)  # the observation says what matters
    _cap_address_space(ADDRESS_SPACE_BYTES)
    before = _reset_peak()
    started = time.perf_counter()
    try:
        seen = run_case(case, good, Path(corpus_dir))
    except BaseException as exc:  # noqa: BLE001 - a crash is an outcome to report
        seen = {"status": None, "error": None, "chunks": None,
                "problems": [f"the run itself crashed: {type(exc).__name__}: {exc}"]}
    seen.update(name=case["name"], processor=case["processor"],
                seconds=round(time.perf_counter() - started, 2),
                peak_mb=round((_status_kb("VmHWM") - before) / 1024, 1))
    send.send(seen)
    send.close()


def _cap_address_space(extra: int) -> None:
    limit = _status_kb("VmSize") * 1024 + extra
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _reset_peak() -> int:
    """Resets VmHWM to the current resident size (Linux 4.0+); returns it in kB."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass
    return _status_kb("VmHWM")


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def run_case(case: dict[str, Any], good: dict[str, Any], corpus_dir: Path) -> dict[str, Any]:
    """Run the bad case and a good job side by side on one in-memory pipeline;
    returns {status, error, chunks, problems}."""
    pipe = memory_pipeline(**case["settings"])
    problems: list[str] = []
    jobs = {}
    for role, entry in (("bad", case), ("good", good)):
        job = new_job(pipe, entry["filename"], entry["processor"], entry["options"])
        store_upload(pipe, job, (corpus_dir / entry["path"]).read_bytes(), "application/octet-stream")
        jobs[role] = job
    bad_id, good_id = jobs["bad"].job_id, jobs["good"].job_id
    for role in ("bad", "good"):
        _call(problems, f"dispatching the {role} job", handle_uploaded_object, pipe, jobs[role].source_key)
    _deliver(pipe, bad_id, problems)

    bad, good_job = pipe.store.get_job(bad_id), pipe.store.get_job(good_id)
    bad_result, bad_raw = _result(pipe, bad, problems)
    problems += [f"the bad job: {p}" for p in _judge(case["expected"], bad, bad_result, bad_raw)]
    good_result, good_raw = _result(pipe, good_job, problems)
    problems += [f"the good job beside it: {p}"
                 for p in _judge(good["expected"], good_job, good_result, good_raw)]
    for job in (bad, good_job):
        problems += _check_outputs(pipe, job)
    problems += _stray_keys(pipe, [bad, good_job])
    return {"status": bad.status.value, "error": bad.error, "chunks": bad.chunks_total,
            "row_errors": _row_errors(bad_result)[:3], "problems": problems}


def _deliver(pipe: Any, bad_id: str, problems: list[str]) -> None:
    """Work every message until none is left: the two jobs' chunks taken in
    turn, the bad job's first ones twice, and each aggregation twice."""
    for _ in range(MAX_ROUNDS):
        tasks, aggregations = pipe.work_queue.drain(), pipe.aggregate_queue.drain()
        if not tasks and not aggregations:
            return
        bad = [t for t in tasks if t["job_id"] == bad_id]
        good = [t for t in tasks if t["job_id"] != bad_id]
        bad = [t for i, t in enumerate(bad) for _ in range(2 if i < REDELIVERED else 1)]
        for body in _alternate(bad, good):
            role = "bad" if body["job_id"] == bad_id else "good"
            _call(problems, f"chunk {body['chunk']} of the {role} job", run_chunk, pipe,
                  ChunkTask.from_message(body))
        for body in aggregations + aggregations:
            _call(problems, "aggregating", aggregate_job, pipe, body["job_id"])
    problems.append(f"messages were still coming after {MAX_ROUNDS} rounds of delivery")


def _alternate(a: list, b: list) -> list:
    out = []
    for i in range(max(len(a), len(b))):
        out += a[i:i + 1] + b[i:i + 1]
    return out


def _call(problems: list[str], what: str, handler: Callable, *args: Any) -> None:
    try:
        handler(*args)
    except InputError:
        pass  # a message that can never succeed is dropped, not retried; the job must still end
    except Exception as exc:  # noqa: BLE001 - the point is to see it
        problems.append(f"{what} raised {type(exc).__name__}: {str(exc)[:300]}; the queue would "
                        "deliver the message again, and fail the same way every time")


def _result(pipe: Any, job: Any, problems: list[str]) -> tuple[dict | None, str]:
    if not job.result_key:
        return None, ""
    raw = pipe.blobs.get(job.result_key).decode()
    try:
        return json.loads(raw, parse_constant=_refuse_constant), raw
    except ValueError as exc:
        problems.append(f"job {job.filename}: its result is not strict JSON ({exc})")
        return json.loads(raw), raw


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _judge(expected: dict[str, Any], job: Any, result: dict | None, raw: str) -> list[str]:
    problems = []
    status, error = job.status.value, job.error or ""
    if status != expected["status"]:
        problems.append(f"ended {status} ({error[:300] or 'no error'}), expected {expected['status']}")
        return problems
    row_errors = "\n".join(_row_errors(result))
    where = error if status == "failed" else row_errors
    for word in expected["words"]:
        if word not in where:
            what = "its error" if status == "failed" else "its row errors"
            problems.append(f"{what} lack {word!r}: {where[:400]!r}")
    for path, value in expected["result"].items():
        found = _at(result or {}, path)
        if found != value:
            problems.append(f"result {path} is {found!r}, expected {value!r}")
    for word in expected["never"]:
        if word in error or word in row_errors or word in raw:
            problems.append(f"{word!r} leaked into its error or result")
    return problems


def _row_errors(result: dict | None) -> list[str]:
    errors = (result or {}).get("errors") or {}
    return ([_with_row(e.get("row"), str(e.get("error"))) for e in errors.get("rows", [])]
            + [_with_row(c.get("first_row"), str(c.get("error"))) for c in errors.get("failed_chunks", [])])


def _with_row(row: Any, error: str) -> str:
    return error if row is None or error.startswith("row ") else f"row {row}: {error}"


_MISSING = object()


def _at(body: Any, path: str) -> Any:
    """The value at a dotted path; keys may hold dots themselves ("a.1")."""
    if not path:
        return body
    if not isinstance(body, dict):
        return _MISSING
    for cut in [len(path), *(i for i in range(len(path) - 1, 0, -1) if path[i] == ".")]:
        key = path[:cut]
        if key in body:
            found = _at(body[key], path[cut + 1:])
            if found is not _MISSING:
                return found
    return _MISSING


_RECORD_STATUS = {"failed": "error", "completed": "success", "completed_with_errors": "success"}


def _check_outputs(pipe: Any, job: Any) -> list[str]:
    """The job's seed 004 record agrees with its status, and its report runs nothing."""
    problems = []
    record = pipe.store.get_record(job.job_id, "FILE")
    want = _RECORD_STATUS.get(job.status.value)
    said = (record or {}).get("status")
    if want and said != want:
        problems.append(f"job {job.filename}: its FILE record says {said!r}, not {want!r}")
    report = job.outputs.get("report")
    if report:
        key = report.split("/", 3)[3] if report.startswith("s3://") else report
        book = openpyxl.load_workbook(io.BytesIO(pipe.blobs.get(key)), read_only=True)
        try:
            for sheet in book.worksheets:
                for row in sheet.iter_rows():
                    for cell in row:
                        if cell.data_type == "f" or str(cell.value or "").startswith("="):
                            problems.append(f"job {job.filename}: report cell {sheet.title}!"
                                            f"{cell.coordinate} is a formula: {str(cell.value)[:80]!r}")
                            return problems
        finally:
            book.close()
    return problems


def _stray_keys(pipe: Any, jobs: Sequence[Any]) -> list[str]:
    mine = ("processed/", *(f"{top}/{job.job_id}/" for job in jobs for top in ("uploads", "work", "results")))
    stray = sorted(key for key in pipe.blobs.objects if not key.startswith(mine))
    return [f"written outside the jobs' keys: {stray[:5]}"] if stray else []


# -- by hand ------------------------------------------------------------------------------

def format_table(observed: Sequence[dict[str, Any]]) -> str:
    lines = [f"{'case':34} {'processor':9} {'status':22} {'s':>6} {'MB':>6}  verdict"]
    for seen in observed:
        verdict = "handled" if seen["handled"] else "NOT HANDLED: " + "; ".join(seen["problems"])
        lines.append(f"{seen['name']:34} {seen['processor']:9} {seen['status'] or '-':22} "
                     f"{seen['seconds']:6.2f} {seen['peak_mb'] if seen['peak_mb'] is not None else '-':>6}  "
                     f"{verdict[:400]}")
    return "\n".join(lines)


def summary_line(observed: Sequence[dict[str, Any]]) -> str:
    return f"bad-input corpus: {len(observed)} tried, {sum(s['handled'] for s in observed)} handled"
