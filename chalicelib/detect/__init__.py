"""Detectors: identifiers found in a page's OCR'd text.

    for detector in detectors_for(["npi"]):
        findings += detector.find(page_text, page_number)

A new detector is a class with `name` and `find(text, page)`, and one line in
DETECTORS.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from .base import CONTEXT_WIDTH, Detector, DetectorError, Finding, UnknownDetectorError, masked_context
from .npi import NpiDetector, is_valid_npi, npi_check_digit

__all__ = ["CONTEXT_WIDTH", "DETECTORS", "Detector", "DetectorError", "Finding", "NpiDetector",
           "UnknownDetectorError", "detectors_for", "is_valid_npi", "masked_context", "npi_check_digit"]

#: every detector a job may ask for, by name
DETECTORS: dict[str, Callable[[], Detector]] = {
    "npi": NpiDetector,
}


def detectors_for(names: Iterable[str]) -> list[Detector]:
    """One detector for each name, in the order given (a name given twice
    counts once)."""
    names = [names] if isinstance(names, str) else list(names)
    unknown = [name for name in names if not isinstance(name, str) or name not in DETECTORS]
    if unknown:
        raise UnknownDetectorError(f"unknown detector {', '.join(map(repr, unknown))}; "
                                   f"choose from: {', '.join(DETECTORS)}")
    return [DETECTORS[name]() for name in dict.fromkeys(names)]
