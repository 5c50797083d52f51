"""Pages for the pages processor's tests and benchmark, made by real
libraries: white "scanned" page images with known black text (Pillow, its
built-in TrueType font, so no system font is needed), multi-page TIFFs in
each compression scanners write, PDFs with only page images (img2pdf) or
with a real text layer (fpdf2), and documents holding known NPIs among
invalid ones and look-alikes.

A big document for the benchmark streams to disk one page at a time:

    pages_lines, expected = npi_lines(2000, {...}, rng)
    tiff_file(path, (render_page(lines) for lines in pages_lines), "group4")
"""
from __future__ import annotations

import io
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import IO

from PIL import Image, ImageDraw, ImageFont, TiffImagePlugin

from chalicelib.detect.npi import is_valid_npi, npi_check_digit
from tests.support.documents import pdf_bytes

#: US Letter at 200 dpi, a common fax and archive scan resolution
PAGE_SIZE = (1700, 2200)
DPI = 200
FONT_SIZE = 40
#: Pillow's name of each TIFF compression → the value of TIFF tag 259
COMPRESSIONS = {"raw": 1, "tiff_lzw": 5, "packbits": 32773, "group3": 3, "group4": 4, "jpeg": 7}
_BILEVEL = ("group3", "group4")  # CCITT fax codings: black and white only
_FILLER = ("patient", "claim", "billing", "service", "date", "visit", "office", "referral", "clinic",
           "procedure", "diagnosis", "payer", "member", "plan", "amount", "review", "signed", "notes")


def valid_npi(rng: random.Random) -> str:
    """A random valid NPI; like those CMS issues, it starts with 1 or 2."""
    first_nine = rng.choice("12") + "".join(rng.choice("0123456789") for _ in range(8))
    return first_nine + str(npi_check_digit(first_nine))


def invalid_npi(rng: random.Random) -> str:
    """Ten digits shaped like an NPI whose check digit is wrong."""
    npi = valid_npi(rng)
    return npi[:9] + str((int(npi[9]) + rng.randint(1, 9)) % 10)


def render_page(lines: Sequence[str], size: tuple[int, int] = PAGE_SIZE,
                font_size: int = FONT_SIZE) -> Image.Image:
    """A white greyscale page with `lines` in black, one and a half lines
    apart, `2 * font_size` from the top-left corner; its dpi says 200.
    Raises ValueError rather than clip a line that does not fit."""
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=font_size)
    margin, step = 2 * font_size, round(1.5 * font_size)
    for number, line in enumerate(lines):
        x, y = margin, margin + number * step
        left, top, right, bottom = draw.textbbox((x, y), line, font=font)
        if right > size[0] - margin // 2 or bottom > size[1] - margin // 2:
            raise ValueError(f"line {number + 1} ({line!r}) does not fit a {size[0]}x{size[1]} page "
                             f"at font size {font_size}")
        draw.text((x, y), line, fill=0, font=font)
    page.info["dpi"] = (DPI, DPI)
    return page


def tiff_bytes(pages: Iterable[Image.Image], compression: str = "group4") -> bytes:
    """The pages as one multi-page TIFF, every page in `compression` (a key
    of COMPRESSIONS). Group 3/4 pages are made bilevel (a plain threshold, as
    a fax scanner does), JPEG pages greyscale unless they are RGB."""
    out = io.BytesIO()
    _write_tiff(out, pages, compression)
    return out.getvalue()


def tiff_file(path: str | PathLike[str], pages: Iterable[Image.Image], compression: str = "group4") -> Path:
    """tiff_bytes written to `path` a page at a time: give a generator of
    pages and a document of thousands of pages never sits in memory."""
    with open(path, "w+b") as out:
        _write_tiff(out, pages, compression)
    return Path(path)


def _write_tiff(out: IO[bytes], pages: Iterable[Image.Image], compression: str) -> None:
    if compression not in COMPRESSIONS:
        raise ValueError(f"unknown TIFF compression {compression!r}; choose from {', '.join(COMPRESSIONS)}")
    written = 0
    # What Pillow's save_all does, one page at a time instead of a list.
    with TiffImagePlugin.AppendingTiffWriter(out, new=True) as tiff:
        for page in pages:
            _tiff_mode(page, compression).save(tiff, format="TIFF", compression=compression, dpi=(DPI, DPI))
            tiff.newFrame()
            written += 1
    if not written:
        raise ValueError("a TIFF needs at least one page")


def _tiff_mode(page: Image.Image, compression: str) -> Image.Image:
    if compression in _BILEVEL:
        if page.mode == "1":
            return page
        return page.convert("L").point(lambda v: 255 if v >= 128 else 0, mode="1")
    if compression == "jpeg" and page.mode not in ("L", "RGB"):
        return page.convert("RGB" if page.mode in ("RGBA", "P", "CMYK") else "L")
    return page


def pdf_scanned_bytes(pages: Iterable[Image.Image]) -> bytes:
    """A PDF of page images only, no text layer, as a scanner makes: each
    page sized from the image's dpi (Letter for render_page's pages)."""
    import img2pdf

    encoded = []
    for page in pages:
        out = io.BytesIO()
        page.save(out, format="PNG", dpi=page.info.get("dpi", (DPI, DPI)))
        encoded.append(out.getvalue())
    return img2pdf.convert(encoded, nodate=True)


def pdf_text_bytes(pages_lines: Sequence[Sequence[str]]) -> bytes:
    """A PDF whose text layer holds each page's lines."""
    return pdf_bytes((), pages=pages_lines)


@dataclass(frozen=True)
class NpiExpected:
    page_count: int
    #: page (from 1) → the valid NPIs written on it, in order; pages without any are absent
    npis: dict[int, list[str]]
    #: (page, NPI) for the NPIs written right after the word "NPI"; every
    #: other NPI has no keyword anywhere before it on its page, so a
    #: detector scores it lower
    labelled: frozenset[tuple[int, str]]
    #: page → the NPI look-alikes on it, none of which is a valid NPI
    decoys: dict[int, list[str]]
    #: each page's lines of text, page 1 first
    lines: list[list[str]]

    @property
    def npi_pages(self) -> list[int]:
        return sorted(page for page, npis in self.npis.items() if npis)


def npi_lines(page_count: int, npi_pages: dict[int, list[str]], rng: random.Random) -> tuple[
        list[list[str]], NpiExpected]:
    """The text of a `page_count`-page document with the valid NPIs of
    `npi_pages` (page from 1 → NPIs) and, on every page, look-alikes that are
    not NPIs: invalid NPIs after the word "NPI" and without it, 11- and
    9-digit numbers, a phone number. Each valid NPI is written either right
    after "NPI: " or, before any keyword on its page, after other words."""
    for page, npis in npi_pages.items():
        if not 1 <= page <= page_count:
            raise ValueError(f"page {page} is outside 1-{page_count}")
        bad = [npi for npi in npis if not is_valid_npi(npi)]
        if bad:
            raise ValueError(f"not valid NPIs: {bad}")
    pages_lines, labelled, decoys = [], set(), {}
    for page in range(1, page_count + 1):
        bare, after_keyword = [], []
        for npi in npi_pages.get(page, []):
            (after_keyword if rng.random() < 0.5 else bare).append(npi)
        labelled.update((page, npi) for npi in after_keyword)
        page_decoys = [invalid_npi(rng), invalid_npi(rng), _digits(rng, 11), _digits(rng, 9)]
        phone = f"({rng.randint(200, 999)}) {rng.randint(200, 999)}-{_digits(rng, 4)}"
        pages_lines.append([
            f"Claim form page {page} of {page_count}",
            *(f"Rendering provider {npi}" for npi in bare),  # before any keyword on the page
            _filler(rng),
            *(f"NPI: {npi}" for npi in after_keyword),
            f"NPI: {page_decoys[0]}",
            f"Reference {page_decoys[1]}",
            f"Account {page_decoys[2]}",
            f"Member ID {page_decoys[3]}",
            f"Phone {phone}",
            _filler(rng),
        ])
        decoys[page] = [*page_decoys, phone]
    npis = {page: list(found) for page, found in sorted(npi_pages.items()) if found}
    return pages_lines, NpiExpected(page_count=page_count, npis=npis, labelled=frozenset(labelled),
                                    decoys=decoys, lines=pages_lines)


def npi_document(page_count: int, npi_pages: dict[int, list[str]], rng: random.Random, kind: str = "tiff",
                 compression: str = "group4", size: tuple[int, int] = PAGE_SIZE,
                 font_size: int = FONT_SIZE) -> tuple[bytes, NpiExpected]:
    """npi_lines as a document: kind "tiff" (in `compression`),
    "pdf_scanned" (page images) or "pdf_text" (a text layer, nothing to OCR).
    `size` and `font_size` shape the rendered pages (small pages OCR faster)."""
    pages_lines, expected = npi_lines(page_count, npi_pages, rng)
    if kind == "pdf_text":
        return pdf_text_bytes(pages_lines), expected
    pages = (render_page(lines, size, font_size) for lines in pages_lines)
    if kind == "tiff":
        return tiff_bytes(pages, compression), expected
    if kind == "pdf_scanned":
        return pdf_scanned_bytes(pages), expected
    raise ValueError(f"unknown document kind {kind!r}; choose from tiff, pdf_scanned, pdf_text")


def _digits(rng: random.Random, count: int) -> str:
    return rng.choice("123456789") + "".join(rng.choice("0123456789") for _ in range(count - 1))


def _filler(rng: random.Random) -> str:
    return " ".join(rng.sample(_FILLER, k=5)).capitalize()
