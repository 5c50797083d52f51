"""Processors by name. A new processor is one module and one line here."""
from __future__ import annotations

from ..jobs.model import InputError
from .base import (
    ChunkResult,
    DocumentChunk,
    Emit,
    FinishContext,
    Outcome,
    PageChunk,
    Partial,
    Processor,
    ReportContent,
    RowColumn,
    TableChunk,
    fold,
)
from .carbon import CarbonProcessor
from .pages import PagesProcessor
from .profile import ProfileProcessor
from .scan import ScanProcessor

_REGISTRY: dict[str, Processor] = {
    p.name: p for p in (ProfileProcessor(), CarbonProcessor(), ScanProcessor(), PagesProcessor())
}


def get_processor(name: str) -> Processor:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(
            f"unknown processor {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}"
        ) from None


def processor_names() -> list[str]:
    return sorted(_REGISTRY)


__all__ = [
    "ChunkResult", "DocumentChunk", "Emit", "FinishContext", "Outcome", "PageChunk", "Partial", "Processor",
    "ReportContent", "RowColumn", "TableChunk",
    "fold", "get_processor", "processor_names",
]
