"""What a detector finds in a page's text, and the interface every detector
(NPIs today, other identifiers later) implements.

Findings are logged, stored with the batch and shown on the dashboard, so a
finding's `context` never carries an identifier in full: every digit in it is
masked except the last four of the finding's own value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..jobs.model import InputError

#: characters of text kept on each side of a finding in its context
CONTEXT_WIDTH = 30
_KEEP_DIGITS = 4


class DetectorError(InputError):
    """Base of the errors the detectors raise on purpose."""


class UnknownDetectorError(DetectorError, ValueError):
    """A job asked for a detector that does not exist. (A ValueError too,
    for callers that check arguments that way.)"""


@dataclass(frozen=True)
class Finding:
    #: what was found, e.g. "npi"
    kind: str
    #: the identifier as its detector normalises it (an NPI's ten digits)
    value: str
    #: the page it is on, from 1
    page: int
    #: 0-1, for ranking: how sure the detector is that this is one
    score: float
    #: the text around it, whitespace runs as one space, digits masked
    context: str


@runtime_checkable
class Detector(Protocol):
    name: str

    def find(self, text: str, page: int) -> list[Finding]: ...


def masked_context(text: str, start: int, end: int) -> str:
    """The text around text[start:end] with every digit masked as "*" except
    the last four digits inside text[start:end]; other numbers nearby (other
    identifiers, phone numbers) are masked whole."""
    kept = [i for i in range(start, end) if text[i].isdigit()][-_KEEP_DIGITS:]
    low, high = max(0, start - CONTEXT_WIDTH), min(len(text), end + CONTEXT_WIDTH)
    # Whole words only: drop a word the window cuts into.
    while 0 < low < start and not text[low - 1].isspace():
        low += 1
    while start < end < high < len(text) and not text[high].isspace():
        high -= 1
    chars = ("*" if ch.isdigit() and i not in kept else ch for i, ch in enumerate(text[low:high], low))
    return " ".join("".join(chars).split())
