"""What every OCR engine gives back, the errors it raises, and the one image
preparation they share.

An engine reads one page image and returns its text, lines separated by
"\\n", with the engine's mean word confidence. Engines never see a file:
the page reader hands them decoded `PIL.Image`s in whatever mode the file
held, and `ocr_ready` turns that mode into one they take.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL import Image

from ..jobs.model import SluiceError


class OcrError(SluiceError):
    """Base of the errors an OCR engine raises on purpose."""


class OcrUnavailableError(OcrError):
    """The engine cannot run at all here (binary, language data or access
    missing): every page would fail the same way until someone fixes the
    deployment, so this is not the page's fault."""


class OcrFailedError(OcrError):
    """The engine ran but could not read this page (a corrupt or unsupported
    image, a page that takes too long). Retrying gives the same answer."""


@dataclass(frozen=True)
class PageText:
    text: str
    #: the engine's mean word confidence, 0-100, one decimal; 0.0 when no words
    confidence: float
    engine: str


@runtime_checkable
class OcrEngine(Protocol):
    name: str

    def read(self, image: Image.Image) -> PageText: ...


def mean_confidence(values: list[float]) -> float:
    return round(sum(values) / len(values), 1) if values else 0.0


def ocr_ready(image: Image.Image) -> Image.Image:
    """The page in mode "1", "L" or "RGB", which every engine and image
    format takes. Transparent parts become white (paper); 16-bit and float
    greyscale is stretched to 8 bits (a plain conversion clips it, and a
    12-bit scan would come out nearly black); LAB keeps its lightness."""
    mode = image.mode
    if mode in ("1", "L", "RGB"):
        return image
    if mode.startswith("I") or mode == "F":
        return _stretch_to_grey(image)
    if mode == "LAB":
        return image.getchannel("L")
    if mode == "La":  # premultiplied alpha, which converts to nothing else
        image = image.convert("LA")
    if "A" in image.getbands() or "a" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("RGB")
    return image.convert("RGB")  # P, CMYK, YCbCr, HSV


def _stretch_to_grey(image: Image.Image) -> Image.Image:
    wide = image if image.mode in ("I", "F") else image.convert("I")
    low, high = wide.getextrema()
    if high <= low:
        return Image.new("L", image.size, 255 if high > 0 else 0)
    scale = 255 / (high - low)
    return wide.point(lambda v: (v - low) * scale).convert("L")
