"""Tesseract, run through pytesseract: the OCR engine of local runs and tests
(Debian's tesseract-ocr with its English data)."""
from __future__ import annotations

import os

import pytesseract
from PIL import Image

from .base import OcrFailedError, OcrUnavailableError, PageText, mean_confidence, ocr_ready

_NOT_INSTALLED = ("Tesseract is not installed or not on PATH: install tesseract-ocr and its language data "
                  "(Debian/Ubuntu: apt-get install tesseract-ocr tesseract-ocr-eng)")
_NO_LANGUAGE = ("Failed loading language", "couldn't load any languages")
# Resolutions Tesseract accepts; outside them a file's own figure is a
# placeholder (Pillow writes 1 dpi into TIFFs saved without one).
_DPI_RANGE = (70, 2400)
_WORD_LEVEL = 5


class TesseractOcr:
    """`lang` is Tesseract's language code ("eng", "eng+deu"); `psm` its page
    segmentation mode (3: automatic, 6: one uniform block of text);
    `timeout_s` bounds one page, which then fails with OcrFailedError."""

    name = "tesseract"

    def __init__(self, lang: str = "eng", psm: int = 3, timeout_s: float = 30.0):
        if psm not in range(14):
            raise ValueError(f"psm must be one of Tesseract's page segmentation modes 0-13, got {psm!r}")
        # Tesseract's OpenMP threads contend with each other and with other
        # Tesseracts: a page takes ~6x longer on 2 CPUs than with one thread.
        # Pages run in parallel instead. pytesseract hands os.environ to the
        # process, so this is the only way in; an operator's own value wins.
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")
        self.lang = lang
        self.psm = psm
        self.timeout_s = timeout_s

    def read(self, image: Image.Image) -> PageText:
        page = ocr_ready(image).copy()
        # pytesseract writes the page to a temporary file in `page.format`;
        # PNM is the quickest to write and Tesseract reads it. (A page opened
        # from a TIFF would otherwise be re-encoded with its own compression.)
        page.format = "PPM"
        config = f"--psm {self.psm}"
        dpi = _dpi(image)
        if dpi:
            config += f" --dpi {dpi}"
        try:
            data = pytesseract.image_to_data(page, lang=self.lang, config=config, timeout=self.timeout_s,
                                             output_type=pytesseract.Output.DICT)
        except pytesseract.TesseractNotFoundError as exc:
            raise OcrUnavailableError(_NOT_INSTALLED) from exc
        except pytesseract.TesseractError as exc:
            message = str(exc.message).strip()
            if any(marker in message for marker in _NO_LANGUAGE):
                raise OcrUnavailableError(
                    f"Tesseract has no data for language {self.lang!r}: install its traineddata "
                    f"(Debian/Ubuntu: tesseract-ocr-{self.lang.split('+')[0]}); Tesseract said: {message}"
                ) from exc
            raise OcrFailedError(f"Tesseract could not read the page: {message or exc}") from exc
        except RuntimeError as exc:
            if str(exc) != "Tesseract process timeout":
                raise
            raise OcrFailedError(f"Tesseract took longer than {self.timeout_s:g} s on the page") from exc
        return _page_text(data)


def _page_text(data: dict[str, list]) -> PageText:
    """Words in the order Tesseract read them, a space between words, a line
    break between lines and an empty line between paragraphs."""
    paragraphs: dict[tuple[int, int], dict[int, list[str]]] = {}
    confidences: list[float] = []
    for level, block, par, line, conf, word in zip(
        *(data.get(column, ()) for column in ("level", "block_num", "par_num", "line_num", "conf", "text")),
        strict=True,
    ):
        word = str(word).strip()
        if level != _WORD_LEVEL or not word:
            continue
        paragraphs.setdefault((block, par), {}).setdefault(line, []).append(word)
        if float(conf) >= 0:
            confidences.append(float(conf))
    text = "\n\n".join("\n".join(" ".join(words) for words in lines.values())
                       for lines in paragraphs.values())
    return PageText(text=text, confidence=mean_confidence(confidences), engine=TesseractOcr.name)


def _dpi(image: Image.Image) -> int | None:
    try:
        dpi = round(float(image.info.get("dpi", (0, 0))[0]))
    except (TypeError, ValueError, IndexError):
        return None
    return dpi if _DPI_RANGE[0] <= dpi <= _DPI_RANGE[1] else None
