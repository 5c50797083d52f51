"""What the client shows people: a job's summary, the jobs table, and the
progress of a job being waited for (a bar on a terminal, plain lines in logs)."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TextIO

FILE_COLUMN_WIDTH = 32
BAR_WIDTH = 24
# Erases what is left of the line, so a shorter redraw leaves no tail behind.
CLEAR_TO_END = "\x1b[K"


def percent_of(job: dict[str, Any]) -> float:
    return float((job.get("progress") or {}).get("percent", 0.0))


def percent_text(percent: float) -> str:
    return f"{percent:.0f}%" if float(percent).is_integer() else f"{percent:.1f}%"


def progress_text(job: dict[str, Any]) -> str:
    """What the job counts: `120/300 documents` for a job that knows its
    items up front (a scan's documents, a page job's pages), else `2/5
    chunks, 1 failed, 1,200 rows`."""
    progress = job.get("progress") or {}
    failed = progress.get("chunks_failed", 0)
    items_total = progress.get("items_total")
    if items_total:
        # Such a job's rows_processed counts the items read.
        done = min(progress.get("rows_processed", 0), items_total)
        parts = [f"{done:,}/{items_total:,} {progress.get('items_label') or 'items'}"]
        if failed:
            parts.append(f"{failed} chunk{'s' if failed > 1 else ''} failed")
        return ", ".join(parts)
    # Chunks are sent while the file is still being split: the total is
    # known (non-zero) only once splitting is over.
    parts = [f"{progress.get('chunks_done', 0)}/{progress.get('chunks_total') or '?'} chunks"]
    if failed:
        parts.append(f"{failed} failed")
    parts.append(f"{progress.get('rows_processed', 0):,} rows")
    return ", ".join(parts)


def progress_line(job: dict[str, Any], elapsed_s: float) -> str:
    """One line of progress for a log: `[  2.1s] processing 40% (2/5 chunks, 1,200 rows)`."""
    return f"[{elapsed_s:6.1f}s] {job['status']} {percent_text(percent_of(job))} ({progress_text(job)})"


def progress_bar(job: dict[str, Any], elapsed_s: float, width: int = BAR_WIDTH) -> str:
    """The terminal's bar: `processing  40% |#########.............| 2/5 chunks, 1,200 rows 3s`."""
    percent = min(max(percent_of(job), 0.0), 100.0)
    filled = round(width * percent / 100)
    return (f"{job['status']:<11} {percent:3.0f}% |{'#' * filled}{'.' * (width - filled)}| "
            f"{progress_text(job)} {elapsed_s:.0f}s")


def utc_time(timestamp: str | None) -> str:
    """`2026-11-22T15:03:01.123Z` -> `2026-11-22 15:03:01`; '' for None."""
    return (timestamp or "")[:19].replace("T", " ")


def _plain(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def format_status(job: dict[str, Any], base_url: str) -> str:
    """A job as `status JOB` shows it: one `label  value` line per fact."""
    lines = [
        ("job", job["job_id"]),
        ("status", job["status"]),
        ("processor", job.get("processor", "")),
        ("file", job.get("filename", "")),
        ("progress", f"{percent_text(percent_of(job))} ({progress_text(job)})"),
        ("created", f"{utc_time(job.get('created_at'))} UTC"),
    ]
    if job.get("finished_at"):
        lines.append(("finished", f"{utc_time(job['finished_at'])} UTC"))
    if job.get("options"):
        lines.append(("options", _plain(job["options"])))
    if job.get("totals"):
        lines.append(("totals", ", ".join(f"{k}={_plain(v)}" for k, v in job["totals"].items())))
    if job.get("error"):
        lines.append(("error", job["error"]))
    if job["status"] in ("completed", "completed_with_errors"):
        lines += [(name, base_url + link) for name, link in job.get("links", {}).items() if name != "self"]
    width = max(len(label) for label, _ in lines)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in lines)


def _shortened(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def format_jobs_table(jobs: list[dict[str, Any]]) -> str:
    """Recent jobs, one per row, columns padded to their widest cell."""
    if not jobs:
        return "no jobs yet"
    header = ("JOB", "STATUS", "PROCESSOR", "FILE", "DONE", "CREATED (UTC)")
    rows = [(job["job_id"], job["status"], job.get("processor", ""),
             _shortened(job.get("filename", ""), FILE_COLUMN_WIDTH),
             percent_text(percent_of(job)), utc_time(job.get("created_at")))
            for job in jobs]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in [header, *rows])


class ProgressDisplay:
    """Shows each polled state of a job on `stream`. On a terminal: one bar,
    redrawn in place. Elsewhere (CI, a log file), where carriage returns would
    pile up as noise: a line whenever the status changes or the percent
    passes another tenth."""

    def __init__(self, stream: TextIO, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._stream = stream
        self._tty = stream.isatty() if tty is None else tty
        self._clock = clock
        self._started = clock()
        self._last_step: tuple[str, int] | None = None
        self._bar_drawn = False

    def update(self, job: dict[str, Any]) -> None:
        elapsed = self._clock() - self._started
        if self._tty:
            self._stream.write("\r" + progress_bar(job, elapsed) + CLEAR_TO_END)
            self._stream.flush()
            self._bar_drawn = True
            return
        step = (job["status"], int(percent_of(job) // 10))
        if step != self._last_step:
            self._last_step = step
            print(progress_line(job, elapsed), file=self._stream, flush=True)

    def close(self) -> None:
        """Ends the bar's line, so what comes next starts on its own."""
        if self._bar_drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._bar_drawn = False
