"""Amazon Textract's DetectDocumentText: the OCR engine on AWS. One call a
page, the page sent as image bytes (no S3 object, so a page never needs to
be written anywhere first)."""
from __future__ import annotations

import io
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image

from ..jobs.model import ServiceError
from .base import OcrFailedError, OcrUnavailableError, PageText, mean_confidence, ocr_ready

#: Textract's limits for a synchronous call: the document's size, and its
#: width and height in pixels (https://docs.aws.amazon.com/textract/latest/dg/limits-document.html)
MAX_BYTES = 10 * 1024 * 1024
MAX_SIDE = 10_000
_JPEG_QUALITY = 90

# Worth another delivery: Textract is busy or broken, not the page.
_RETRYABLE = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException",
                        "InternalServerError", "LimitExceededException"})
# The page itself: sending it again gets the same answer.
_UNREADABLE = frozenset({"InvalidParameterException", "UnsupportedDocumentException",
                         "BadDocumentException", "DocumentTooLargeException"})
# The deployment: no page gets through until someone fixes the role.
_REFUSED = frozenset({"AccessDeniedException", "UnrecognizedClientException"})


class TextractOcr:
    """`client` is a boto3 Textract client.

    A page goes as PNG (lossless, and small for scanned text). If its PNG
    passes Textract's 10 MB limit (a large colour or noisy scan), it goes as
    JPEG at quality 90; if even that passes the limit, the page is scaled
    down until its JPEG fits. Sides above Textract's 10,000 pixels are
    scaled down first. Scaling keeps the proportions and only costs
    resolution: a page whose JPEG passes 10 MB is a scan of 600 dpi or more,
    and at 300 dpi 10-point text is still ~40 pixels high, well above the 15
    Textract needs.
    """

    name = "textract"

    def __init__(self, client: Any, max_bytes: int = MAX_BYTES):
        self._client = client
        self._max_bytes = max_bytes

    def read(self, image: Image.Image) -> PageText:
        document = encode_page(image, self._max_bytes)
        try:
            response = self._client.detect_document_text(Document={"Bytes": document})
        except ClientError as exc:
            raise _error(exc) from exc
        except BotoCoreError as exc:
            raise ServiceError(f"Textract could not be reached: {exc}") from exc
        blocks = response.get("Blocks", [])
        # Textract lists a page's LINE blocks in reading order.
        lines = [block["Text"] for block in blocks if block.get("BlockType") == "LINE" and block.get("Text")]
        confidences = [block["Confidence"] for block in blocks
                       if block.get("BlockType") == "WORD" and "Confidence" in block]
        return PageText(text="\n".join(lines), confidence=mean_confidence(confidences), engine=self.name)


def encode_page(image: Image.Image, max_bytes: int = MAX_BYTES) -> bytes:
    """The page as PNG or JPEG bytes within Textract's limits (see TextractOcr)."""
    page = ocr_ready(image)
    if page.mode == "1":
        # Greyscale scales smoothly and JPEG takes it; bilevel does neither.
        page = page.convert("L")
    if max(page.size) > MAX_SIDE:
        page = _scaled(page, MAX_SIDE / max(page.size))
    data = _encoded(page, "PNG")
    if len(data) <= max_bytes:
        return data
    data = _encoded(page, "JPEG")
    while len(data) > max_bytes:
        if min(page.size) < 64:  # only a limit of a few kB gets here
            raise OcrFailedError(f"the page does not fit in {max_bytes:,} bytes even as a tiny JPEG")
        # JPEG size grows roughly with the area: aim just under the limit,
        # shrinking by at least 5% and at most half a side per step.
        factor = min(0.95, max(0.5, 0.95 * (max_bytes / len(data)) ** 0.5))
        page = _scaled(page, factor)
        data = _encoded(page, "JPEG")
    return data


def _scaled(page: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(page.width * factor)), max(1, round(page.height * factor)))
    return page.resize(size, Image.Resampling.LANCZOS)


def _encoded(page: Image.Image, image_format: str) -> bytes:
    out = io.BytesIO()
    if image_format == "JPEG":
        page.save(out, format="JPEG", quality=_JPEG_QUALITY)
    else:
        page.save(out, format=image_format)
    return out.getvalue()


def _error(exc: ClientError) -> Exception:
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    message = error.get("Message", "") or str(exc)
    if code in _UNREADABLE:
        return OcrFailedError(f"Textract could not read the page ({code}: {message})")
    if code in _REFUSED:
        return OcrUnavailableError(f"Textract refused the call ({code}: {message}); the role needs "
                                   f"textract:DetectDocumentText")
    # Busy, broken, or saying something not about the page: the queue
    # delivers the batch again, and after its last try to the DLQ.
    if code in _RETRYABLE:
        return ServiceError(f"Textract is busy or failing ({code}: {message})")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
    return ServiceError(f"Textract failed ({code or f'HTTP {status}'}: {message})")
