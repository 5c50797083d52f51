"""The baseline: the same profile computed by one plain process with pandas,
no cloud, no chunks: read the whole file with pandas.read_csv, run the
profile on it, write the summary.

    python -m bench.baseline data.csv [result.json]
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from chalicelib.processors.base import FinishContext, TableChunk
from chalicelib.processors.profile import ProfileProcessor
from chalicelib.sources.table import parse_csv_chunk


def profile_file(path: Path) -> dict:
    processor = ProfileProcessor()
    parsed = parse_csv_chunk(path.read_bytes(), "utf-8", ",", None, 2)
    chunk = TableChunk(index=0, frame=parsed.frame, row_numbers=parsed.row_numbers,
                       options=processor.validate_options({}))
    partial = processor.process(chunk, lambda kind, body: None).partial
    ctx = FinishContext(job_id="baseline", filename=path.name, options=chunk.options)
    return processor.finish(partial, ctx).result


if __name__ == "__main__":
    started = time.perf_counter()
    result = profile_file(Path(sys.argv[1]))
    seconds = time.perf_counter() - started
    if len(sys.argv) > 2:
        Path(sys.argv[2]).write_text(json.dumps(result))
    print(json.dumps({"seconds": seconds, "row_count": result["row_count"]}))
