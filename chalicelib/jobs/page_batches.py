"""Jobs whose input is one document of many pages (pages, seed 002): the
dispatcher counts the pages and sends one chunk per batch of them, each
saying where its pages lie, so a worker reads those pages and no others."""
from __future__ import annotations

from typing import Any

from ..sources.pages import read_layout
from ..sources.sniff import describe_kind
from .model import ChunkSource, ChunkTask, InputError, Job
from .pipeline import Pipeline

DEFAULT_PAGES_PER_BATCH = 10


def plan_pages(pipe: Pipeline, job: Job, kind: str, fan_out: Any) -> int:
    """Send one chunk per batch of pages; returns how many pages there are."""
    if kind not in ("tiff", "pdf"):
        raise InputError(f"this is {describe_kind(kind)}; the pages processor reads a "
                         "multi-page TIFF or a PDF")
    layout = read_layout(pipe.blobs, job.source_key, kind)
    per_batch = int(job.options.get("pages_per_batch") or DEFAULT_PAGES_PER_BATCH)
    for first in range(1, layout.count + 1, per_batch):
        last = min(first + per_batch - 1, layout.count)
        fan_out.add(ChunkTask(job.job_id, fan_out.next_index, job.processor, options=dict(job.options),
                              source=ChunkSource(key=job.source_key, first_row=first, last_row=last,
                                                 location=layout.batch(first, last))))
    return layout.count
