"""OCR engines: one page image in, its text and mean word confidence out.

    engine = engine_for("tesseract")      # or "textract" on AWS
    page_text = engine.read(pil_image)    # PageText(text, confidence, engine)

Errors: OcrUnavailableError (the engine cannot run here), OcrFailedError
(this page cannot be read), and for Textract jobs.model.ServiceError
(throttled or failing; worth retrying).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .base import OcrEngine, OcrError, OcrFailedError, OcrUnavailableError, PageText, ocr_ready
from .tesseract import TesseractOcr
from .textract import TextractOcr

__all__ = ["ENGINES", "OcrEngine", "OcrError", "OcrFailedError", "OcrUnavailableError", "PageText",
           "TesseractOcr", "TextractOcr", "engine_for", "ocr_ready"]

ENGINES = ("tesseract", "textract")


def engine_for(name: str, textract_client_factory: Callable[[], Any] | None = None) -> OcrEngine:
    """The engine called `name`. Textract's client comes from
    `textract_client_factory`, or else from chalicelib.aws (built on first
    use, with the endpoint override of local runs)."""
    if name == "tesseract":
        return TesseractOcr()
    if name == "textract":
        if textract_client_factory is None:
            from .. import aws  # boto3 only when Textract is wanted

            textract_client_factory = functools.partial(aws.client, "textract")
        return TextractOcr(textract_client_factory())
    raise ValueError(f"unknown OCR engine {name!r}; choose one of: {', '.join(ENGINES)}")
