"""Answers of a factor source, kept per job so no question is asked twice.

A job's rows repeat a handful of (activity, unit, region, year) questions
thousands of times, spread over chunks on many Lambdas. The factor API client
keeps its answers in a dict for the worker and, through this port, in a cache
shared by the job's chunks (DynamoDB: chalicelib/adapters/dynamodb_factor_cache.py).

"Not found" is an answer too: a misspelt activity in every row of a file must
cost one request, not one per row.
"""
from __future__ import annotations

import dataclasses
import json
import threading
from typing import Protocol

from .model import Factor


@dataclasses.dataclass(frozen=True)
class NoFactor:
    """The source has no factor for the question; `reason` is its message."""

    reason: str


Answer = Factor | NoFactor


def cache_key(activity: str, unit: str, region: str | None, year: int | None) -> str:
    """`activity|unit|region|year`, "" for a part not given. `%` and `|` inside
    a part are escaped so that two different questions never share a key."""
    parts = (activity, unit, region or "", "" if year is None else str(year))
    return "|".join(p.replace("%", "%25").replace("|", "%7C") for p in parts)


def answer_to_json(answer: Answer) -> str:
    if isinstance(answer, NoFactor):
        return json.dumps({"not_found": answer.reason})
    return json.dumps({"factor": dataclasses.asdict(answer)})


def answer_from_json(text: str) -> Answer:
    body = json.loads(text)
    if "not_found" in body:
        return NoFactor(body["not_found"])
    return Factor(**body["factor"])


class FactorCache(Protocol):
    def get(self, key: str) -> Answer | None:
        """The answer stored under `key` (see cache_key), None if none is."""
    def put(self, key: str, answer: Answer) -> None: ...


class MemoryFactorCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.answers: dict[str, Answer] = {}

    def get(self, key: str) -> Answer | None:
        with self._lock:
            return self.answers.get(key)

    def put(self, key: str, answer: Answer) -> None:
        with self._lock:
            self.answers[key] = answer
