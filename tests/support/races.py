"""Races shared by the store tests of every implementation."""
from __future__ import annotations

import concurrent.futures as cf

OPEN = ("splitting", "processing")


def settle_every_chunk_three_times_at_once(store, job_id: str, chunks: int = 20) -> list[bool]:
    """Each chunk of a processing job completed three times, concurrently, as
    if every message were delivered thrice; returns what each call said."""
    attempts = [i for i in range(chunks) for _ in range(3)]
    with cf.ThreadPoolExecutor(12) as pool:
        return list(pool.map(lambda i: store.complete_chunk(job_id, i, 5, f"p{i}", OPEN), attempts))
