"""The PDF a pages job ends with when `options.pdf` is set: cover pages
listing the pages where NPIs were found, then every page of the document,
unchanged. A pure function over local files; the aggregator downloads the
source and uploads what this writes.

The cover is written with fpdf2 (core fonts, so its text is made latin-1
safe). Each NPI row links to its page, the outline has an entry per NPI page
("Page 7 — NPI") and page labels number the document's pages from 1 after
the cover pages ("Cover 1", ...), so a viewer's page box shows the document's
own numbers.

A PDF source is the output's base: the cover pages are inserted in front and
everything else (pages, their streams, its outline, forms, links) is written
as it was read, nothing decoded or re-encoded.

A TIFF source goes to img2pdf a page at a time, as one of:
- CCITT G4 in one strip: its data, unchanged, in a one-page TIFF; img2pdf
  copies it into a CCITTFaxDecode image.
- JPEG (compression 7) in strips: the strips joined into one JPEG without
  decoding (shared JPEGTables put in front, each strip's entropy-coded
  data kept byte for byte, a restart marker between strips, the SOF's height
  set to the page's); img2pdf embeds it as DCTDecode. An RGB (not YCbCr) JPEG
  gets an Adobe marker saying so, as a PDF reader would assume YCbCr.
- anything else (none, LZW, PackBits, Deflate, G3, G4 in several strips,
  JPEG that cannot be joined): decoded by Pillow and handed over losslessly;
  img2pdf stores bilevel pages as CCITT G4 and the rest with Flate. img2pdf
  refuses TIFF pages of more than 8 bits per sample, so those go as PNG
  (16-bit grayscale stays 16-bit; Pillow itself reads 16-bit colour as 8-bit,
  which the stats' notes say).
Only the page at hand is ever decoded; img2pdf never decodes what it copies.
The pages' compressed data stays in memory (or, for a PDF source, in the
file) until the output is written.

A TIFF page's size comes from its resolution (none: as wide as a US Letter
page, at least 72 dpi). Its orientation is honoured: Pillow turns a page it
decodes, a copied page gets /Rotate (and a mirrored one is decoded).
"""
from __future__ import annotations

import io
import os
import struct
import unicodedata
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, BinaryIO

import img2pdf
import pikepdf
from fpdf import FPDF
from pikepdf import Array, Dictionary, Name, NumberTree, OutlineItem
from PIL import Image

__all__ = [
    "BatchConfidence", "NpiFinding", "NpiPage", "NpiPdfSummary", "PdfBuildError", "PdfStats", "mask_npi",
    "write_npi_pdf",
]


class PdfBuildError(Exception):
    """The source document cannot be read or copied; the message names the
    page when it is known."""


@dataclass(frozen=True)
class NpiFinding:
    #: the NPI as found or already masked; the cover shows only its last 4 characters
    npi: str
    #: whether the word "NPI" was next to it
    labelled: bool
    score: float


@dataclass(frozen=True)
class NpiPage:
    number: int  # 1-based
    #: may be empty when only the page number was recorded
    findings: Sequence[NpiFinding] = ()


@dataclass(frozen=True)
class BatchConfidence:
    first_page: int
    last_page: int
    #: OCR's mean confidence (0-100); None when the batch had no OCR (text layers)
    confidence: float | None


@dataclass(frozen=True)
class NpiPdfSummary:
    file_name: str
    total_pages: int
    npi_pages: Sequence[NpiPage]
    npi_percentage: float
    batches: Sequence[BatchConfidence] = ()


@dataclass(frozen=True)
class PdfStats:
    pages: int
    cover_pages: int
    document_pages: int
    bytes: int
    #: document pages whose compressed data was copied without decoding
    copied_pages: int
    #: what a reader of the job should know, e.g. a page stored with fewer bits
    notes: tuple[str, ...] = ()


def write_npi_pdf(source_path: str, source_kind: str, out_path: str, summary: NpiPdfSummary) -> PdfStats:
    """Write the cover pages and then every page of the document at
    `source_path` ("tiff" or "pdf") to `out_path`."""
    npi_pages = _checked_npi_pages(summary)
    # Copied pages read their data from their source when the output is saved.
    with ExitStack() as sources:
        if source_kind == "pdf":
            out = sources.enter_context(_open_pdf(source_path))
            copied, notes = len(out.pages), []
        elif source_kind == "tiff":
            out = sources.enter_context(pikepdf.new())
            copied, notes = _append_tiff_pages(out, source_path, sources)
            out.docinfo[Name.Title] = summary.file_name
        else:
            raise ValueError(f"source_kind must be 'tiff' or 'pdf', got {source_kind!r}")
        document_pages = len(out.pages)
        if document_pages != summary.total_pages:
            raise PdfBuildError(f"the summary describes {summary.total_pages} pages but the "
                                f"{source_kind.upper()} has {document_pages}")
        cover_bytes, links = _render_cover(summary, npi_pages)
        cover = sources.enter_context(pikepdf.open(io.BytesIO(cover_bytes)))
        cover_pages = len(cover.pages)
        for index, page in enumerate(cover.pages):
            out.pages.insert(index, page)
        _link_rows(out, links, cover_pages)
        _add_outline(out, npi_pages, cover_pages, document_pages)
        _label_pages(out, cover_pages)
        try:
            # No stream is decoded, recompressed or compressed: pages are written as read.
            out.save(out_path, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
        except pikepdf.PdfError as exc:
            raise PdfBuildError(f"the {source_kind.upper()} cannot be copied ({_reason(exc)})") from None
    return PdfStats(pages=cover_pages + document_pages, cover_pages=cover_pages,
                    document_pages=document_pages, bytes=os.path.getsize(out_path), copied_pages=copied,
                    notes=tuple(notes))


def mask_npi(value: str) -> str:
    """Every character but the last 4 as '*' (idempotent: a masked value stays as it is)."""
    value = value.strip()
    return "*" * max(len(value) - 4, 0) + value[-4:]


def _checked_npi_pages(summary: NpiPdfSummary) -> list[NpiPage]:
    pages = sorted(summary.npi_pages, key=lambda page: page.number)
    numbers = [page.number for page in pages]
    if len(set(numbers)) != len(numbers):
        raise ValueError("an NPI page is listed twice")
    if pages and not 1 <= numbers[0] <= numbers[-1] <= summary.total_pages:
        raise ValueError(f"NPI pages must be within 1..{summary.total_pages}, "
                         f"got {numbers[0]}..{numbers[-1]}")
    return pages


def _open_pdf(path: str) -> pikepdf.Pdf:
    try:
        return pikepdf.open(path)
    except pikepdf.PasswordError:
        raise PdfBuildError("the PDF is encrypted with a password") from None
    except (pikepdf.PdfError, OSError) as exc:
        raise PdfBuildError(f"the PDF cannot be read ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# -- TIFF pages ---------------------------------------------------------------------

# the TIFF tags read here
_IMAGE_WIDTH, _IMAGE_LENGTH, _BITS_PER_SAMPLE, _COMPRESSION = 256, 257, 258, 259
_PHOTOMETRIC, _FILL_ORDER, _STRIP_OFFSETS, _ORIENTATION = 262, 266, 273, 274
_SAMPLES_PER_PIXEL, _ROWS_PER_STRIP, _STRIP_BYTE_COUNTS = 277, 278, 279
_X_RESOLUTION, _Y_RESOLUTION, _PLANAR_CONFIG, _RESOLUTION_UNIT = 282, 283, 284, 296
_T6_OPTIONS, _TILE_OFFSETS, _JPEG_TABLES = 293, 324, 347
#: a resolution under this is taken for none (some writers put 1)
_MIN_DPI = 10.0
_CCITT_G4, _JPEG = 4, 7
# Pillow writes these to PNG; img2pdf embeds a PNG's data as it is.
_PNG_MODES = frozenset({"L", "LA", "P", "RGB", "RGBA", "I;16", "I;16B"})
# TIFF orientation -> clockwise rotation for display (the others mirror too)
_ROTATIONS = {1: 0, 3: 180, 6: 90, 8: 270}
_TRANSPOSING = frozenset({5, 6, 7, 8})  # those that swap width and height


def _append_tiff_pages(out: pikepdf.Pdf, path: str, sources: ExitStack) -> tuple[int, list[str]]:
    try:
        # From a file object, not the path: Pillow 13 maps an uncompressed page
        # opened by path straight from the file, which scrambles one it turns.
        image = sources.enter_context(Image.open(sources.enter_context(open(path, "rb")), formats=["TIFF"]))
        count = image.n_frames
    except Exception as exc:  # noqa: BLE001 - Pillow's errors for a damaged file vary
        raise PdfBuildError(f"the TIFF cannot be read ({_reason(exc)})") from None
    raw = sources.enter_context(open(path, "rb"))
    copied, notes = 0, []
    for number in range(1, count + 1):
        try:
            image.seek(number - 1)
            data, was_copied, page_notes = _tiff_page_pdf(image, raw, number)
        except PdfBuildError:
            raise
        except Exception as exc:  # noqa: BLE001 - decoders raise OSError, ValueError, SyntaxError...
            raise PdfBuildError(f"page {number} of the TIFF cannot be read ({_reason(exc)})") from None
        page_pdf = sources.enter_context(pikepdf.open(io.BytesIO(data)))
        out.pages.append(page_pdf.pages[0])
        copied += was_copied
        notes += page_notes
    return copied, notes


def _tiff_page_pdf(image: Any, raw: BinaryIO, number: int) -> tuple[bytes, bool, list[str]]:
    """The current frame as a one-page PDF from img2pdf, whether its data
    was copied, and notes on what was changed."""
    tags = image.tag_v2
    orientation = tags.get(_ORIENTATION, 1)  # read first: Pillow drops it when it decodes
    stored = (tags[_IMAGE_WIDTH], tags[_IMAGE_LENGTH])  # image.size is the turned size
    dpi = _page_dpi(tags, stored[0])
    # A viewer can turn a page (/Rotate) but not mirror it.
    container = _copyable(tags, stored, raw) if orientation in _ROTATIONS else None
    copied, notes = container is not None, []
    if copied:
        rotation = _ROTATIONS[orientation]
    else:  # Pillow turns (or mirrors) the pixels as it decodes them
        container, note = _decoded(image, number)
        notes += [note] if note else []
        rotation, dpi = 0, dpi[::-1] if orientation in _TRANSPOSING else dpi
    width, height = stored if copied else image.size
    # a PDF page is at least 3 points a side (a larger one gets a /UserUnit from img2pdf)
    layout = img2pdf.get_fixed_dpi_layout_fun((min(dpi[0], 24.0 * width), min(dpi[1], 24.0 * height)))
    return img2pdf.convert(container, layout_fun=layout, rotation=img2pdf.Rotation[str(rotation)],
                           nodate=True), copied, notes


def _page_dpi(tags: Any, width: int) -> tuple[float, float]:
    x, y = float(tags.get(_X_RESOLUTION, 0)), float(tags.get(_Y_RESOLUTION, 0))
    unit = tags.get(_RESOLUTION_UNIT, 2)
    if unit in (2, 3) and x >= _MIN_DPI and y >= _MIN_DPI:  # (NaN, from a zero denominator, is not)
        scale = 2.54 if unit == 3 else 1.0  # per centimetre
        return x * scale, y * scale
    # No resolution: as wide as a US Letter page, but never under 72 dpi (a
    # small image is not blown up). A resolution without a unit is an aspect ratio.
    fit = max(72.0, width / 8.5)
    return fit, fit * (y / x if unit == 1 and x > 0 and y > 0 else 1.0)


def _copyable(tags: Any, size: tuple[int, int], raw: BinaryIO) -> bytes | None:
    """The frame's compressed data in a container img2pdf copies (a one-strip
    G4 TIFF, a JPEG), or None when it has to be decoded."""
    if _TILE_OFFSETS in tags or tags.get(_PLANAR_CONFIG, 1) != 1:
        return None
    compression = tags.get(_COMPRESSION)
    if compression == _CCITT_G4:
        return _g4_tiff(tags, size, raw)
    if compression == _JPEG:
        try:
            return _joined_jpeg(tags, size, raw)
        except _NotJoinable:
            return None
    return None


def _g4_tiff(tags: Any, size: tuple[int, int], raw: BinaryIO) -> bytes | None:
    offsets, counts = tags[_STRIP_OFFSETS], tags[_STRIP_BYTE_COUNTS]
    photometric = tags.get(_PHOTOMETRIC)
    # PDF's CCITT filter takes one strip; T6 "uncompressed mode" is not copied.
    if len(offsets) != 1 or photometric not in (0, 1) or tags.get(_T6_OPTIONS, 0) & 2:
        return None
    page_tags = {_IMAGE_WIDTH: size[0], _IMAGE_LENGTH: size[1], _BITS_PER_SAMPLE: 1, _COMPRESSION: _CCITT_G4,
                 _PHOTOMETRIC: photometric, _FILL_ORDER: tags.get(_FILL_ORDER, 1), _SAMPLES_PER_PIXEL: 1,
                 _ROWS_PER_STRIP: size[1]}
    return _tiff_bytes(page_tags, _read(raw, offsets[0], counts[0]))


def _tiff_bytes(tags: dict[int, int | tuple[int, ...]], data: bytes) -> bytes:
    """A one-page little-endian TIFF holding `data` as its one strip, with
    `tags` (SHORT or LONG values) and the strip's offset and size."""
    entries = sorted({**tags, _STRIP_OFFSETS: 0, _STRIP_BYTE_COUNTS: len(data)}.items())
    after_ifd = 8 + 2 + 12 * len(entries) + 4
    ifd, extra = bytearray(struct.pack("<H", len(entries))), bytearray()
    for tag, value in entries:
        values = value if isinstance(value, tuple) else (value,)
        wide = tag in (_STRIP_OFFSETS, _STRIP_BYTE_COUNTS) or max(values) > 0xFFFF
        payload = struct.pack(f"<{len(values)}{'I' if wide else 'H'}", *values)
        if len(payload) > 4:  # stored after the directory, at a word boundary
            extra_at = after_ifd + len(extra)
            extra += payload + b"\0" * (len(payload) % 2)
            payload = struct.pack("<I", extra_at)
        ifd += struct.pack("<HHI", tag, 4 if wide else 3, len(values)) + payload.ljust(4, b"\0")
    strip_entry = 2 + 12 * [tag for tag, _ in entries].index(_STRIP_OFFSETS)
    struct.pack_into("<I", ifd, strip_entry + 8, after_ifd + len(extra))
    return b"II*\0" + struct.pack("<I", 8) + bytes(ifd) + b"\0\0\0\0" + bytes(extra) + data


def _read(raw: BinaryIO, offset: int, count: int) -> bytes:
    raw.seek(offset)
    data = raw.read(count)
    if len(data) != count:
        raise ValueError("its data runs past the end of the file")
    return data


class _NotJoinable(Exception):
    """The JPEG strips cannot be joined without decoding them."""


_SOI, _EOI, _SOS, _DRI, _APP14 = b"\xff\xd8", b"\xff\xd9", 0xDA, 0xDD, 0xEE
_SEQUENTIAL_SOF = (0xC0, 0xC1)  # baseline and extended sequential, Huffman-coded
_DCT_SOF = (0xC0, 0xC1, 0xC2)  # those and progressive: what PDF readers take
_ANY_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_APP0 = 0xE0  # JFIF, which says YCbCr
# (photometric, samples): grayscale, RGB, YCbCr
_JPEG_COLOURS = {(1, 1), (2, 3), (6, 3)}
# APP14 "Adobe", version 100, no flags, transform 0: the components are RGB, not YCbCr
_ADOBE_RGB = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"


def _joined_jpeg(tags: Any, size: tuple[int, int], raw: BinaryIO) -> bytes:
    width, height = size
    colour = (tags.get(_PHOTOMETRIC), tags.get(_SAMPLES_PER_PIXEL, 1))
    if colour not in _JPEG_COLOURS or set(_as_tuple(tags.get(_BITS_PER_SAMPLE, 8))) != {8}:
        raise _NotJoinable
    rows = min(tags.get(_ROWS_PER_STRIP, height), height)
    tables = _segments(bytes(tags[_JPEG_TABLES]), tables=True) if _JPEG_TABLES in tags else []
    header: list[bytes] | None = None
    scans = []
    for index, (offset, count) in enumerate(zip(tags[_STRIP_OFFSETS], tags[_STRIP_BYTE_COUNTS], strict=True)):
        strip = _read(raw, offset, count)
        segments = _segments(strip)
        if not strip.endswith(_EOI):
            raise _NotJoinable
        frame = _frame(segments, width, colour[1])
        if _lines(segments[frame]) != min(rows, height - index * rows):
            raise _NotJoinable
        if header is None:
            header = segments
        elif [_with_lines(s, 0) for s in segments] != [_with_lines(s, 0) for s in header]:
            raise _NotJoinable  # each strip must have the first one's header
        scans.append(strip[sum(map(len, segments)) + 2:-2])
    if header is None:
        raise _NotJoinable
    frame = _frame(header, width, colour[1])
    header[frame] = _with_lines(header[frame], height)
    markers = [segment[1] for segment in tables + header]
    if len(scans) > 1:
        header.insert(-1, _restart_interval(header[frame], header[-1], width, rows, markers, scans))
    if colour[0] == 2 and _APP0 in markers:
        raise _NotJoinable  # RGB said to be YCbCr
    adobe = _ADOBE_RGB if colour[0] == 2 and _APP14 not in markers else b""
    restarts = b"".join(bytes((0xFF, 0xD0 + index % 8)) + scan for index, scan in enumerate(scans[1:]))
    return _SOI + adobe + b"".join(tables + header) + scans[0] + restarts + _EOI


def _segments(data: bytes, tables: bool = False) -> list[bytes]:
    """The marker segments after SOI: up to EOI (JPEGTables) or up to and
    including SOS (a strip)."""
    if not data.startswith(_SOI):
        raise _NotJoinable
    segments, at = [], 2
    while at + 2 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if tables and marker == _EOI[1]:
            return segments
        end = at + 2 + int.from_bytes(data[at + 2:at + 4], "big")
        if end > len(data):
            break
        segments.append(data[at:end])
        if marker == _SOS and not tables:
            return segments
        at = end
    raise _NotJoinable


def _frame(segments: list[bytes], width: int, components: int) -> int:
    """The index of the SOF segment, checked against the page."""
    frames = [index for index, segment in enumerate(segments) if segment[1] in _ANY_SOF]
    if len(frames) != 1 or segments[-1][1] != _SOS:
        raise _NotJoinable
    segment = segments[frames[0]]
    precision, samples_per_line = segment[4], int.from_bytes(segment[7:9], "big")
    if segment[1] not in _DCT_SOF or precision != 8 or samples_per_line != width or segment[9] != components:
        raise _NotJoinable
    return frames[0]


def _lines(sof: bytes) -> int:
    return int.from_bytes(sof[5:7], "big")


def _with_lines(segment: bytes, lines: int) -> bytes:
    if segment[1] not in _ANY_SOF:
        return segment
    return segment[:5] + lines.to_bytes(2, "big") + segment[7:]


def _restart_interval(sof: bytes, sos: bytes, width: int, rows: int, markers: list[int],
                      scans: list[bytes]) -> bytes:
    """The DRI segment that makes each strip's data one restart interval."""
    components = sof[9]
    sampling = [sof[11 + 3 * i] for i in range(components)]
    # One interleaved scan of every component, no restart markers of its own,
    # and nothing in the data but stuffed 0xFF bytes.
    if sof[1] not in _SEQUENTIAL_SOF or sos[4] != components or _DRI in markers:
        raise _NotJoinable
    if any(scan.count(b"\xff") != scan.count(b"\xff\x00") for scan in scans):
        raise _NotJoinable
    if components == 1:
        mcu_width = mcu_height = 8  # a non-interleaved scan's MCU is one block
    else:
        mcu_width, mcu_height = 8 * max(s >> 4 for s in sampling), 8 * max(s & 15 for s in sampling)
    interval = -(-width // mcu_width) * (rows // mcu_height)
    if rows % mcu_height or not 0 < interval <= 0xFFFF:
        raise _NotJoinable
    return b"\xff\xdd\x00\x04" + interval.to_bytes(2, "big")


def _as_tuple(value: Any) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value,)


def _decoded(image: Any, number: int) -> tuple[bytes, str | None]:
    """The decoded frame in a lossless container img2pdf takes: a TIFF for
    bilevel (img2pdf makes it CCITT G4) and CMYK (Flate), else a PNG."""
    limit = Image.MAX_IMAGE_PIXELS and 2 * Image.MAX_IMAGE_PIXELS  # where Pillow sees a bomb
    if limit and image.width * image.height > limit:
        raise PdfBuildError(f"page {number} of the TIFF is too large to decode "
                            f"({image.width}x{image.height} pixels)")
    image.load()
    bits = max(_as_tuple(image.tag_v2.get(_BITS_PER_SAMPLE, 1)))
    note = None
    if bits > 8 and image.mode.startswith("I;16"):
        note = f"page {number}: {bits}-bit grey stored as a 16-bit PNG (img2pdf takes no TIFF over 8 bits)"
    elif bits > 8:
        note = f"page {number}: {bits}-bit samples reduced to 8 bits (Pillow reads no more)"
    buffer = io.BytesIO()
    if image.mode in ("1", "CMYK"):
        image.save(buffer, "TIFF", compression="raw")
    elif image.mode in _PNG_MODES:
        image.save(buffer, "PNG", compress_level=6)
    else:
        raise PdfBuildError(f"page {number} of the TIFF has {image.mode} pixels, which a PDF cannot hold "
                            "unchanged")
    return buffer.getvalue(), note


# -- the cover ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Link:
    cover_page: int  # 0-based
    rect: tuple[float, float, float, float]  # PDF user space: left, bottom, right, top
    page: int  # the document's page, 1-based


_MARGIN, _ROW, _COLUMNS = 54.0, 15.0, (("Page", 60.0), ("NPI (masked)", 160.0), ('Next to "NPI"', 110.0),
                                      ("Score", 70.0))
_PUNCTUATION = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"',
                              "\u201d": '"', "\u2026": "...", "\u00ad": "-"})


class _CoverPdf(FPDF):
    def footer(self) -> None:
        self.set_y(-_MARGIN + 12)
        self.set_font("Helvetica", size=8)
        self.set_text_color(110)
        self.cell(0, 10, f"NPI summary - cover page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0)


def _render_cover(summary: NpiPdfSummary, npi_pages: list[NpiPage]) -> tuple[bytes, list[_Link]]:
    pdf = _CoverPdf(unit="pt", format="letter")
    pdf.set_margins(_MARGIN, _MARGIN)
    pdf.set_auto_page_break(True, margin=_MARGIN)
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.cell(0, 22, "NPI pages", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(0, 14, _latin1(f"Document: {summary.file_name}"), new_x="LMARGIN", new_y="NEXT")
    findings = [finding for page in npi_pages for finding in page.findings]
    labelled = sum(finding.labelled for finding in findings)
    pdf.multi_cell(0, 14, f"Pages: {summary.total_pages}. Pages with an NPI: {len(npi_pages)} "
                          f"({_number(summary.npi_percentage, 1)}% of pages). NPIs found: {len(findings)}, "
                          f'{labelled} of them next to the word "NPI".', new_x="LMARGIN", new_y="NEXT")
    if summary.batches:
        pdf.multi_cell(0, 14, "OCR confidence by batch: " + "; ".join(map(_batch_confidence, summary.batches))
                       + ".", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    links = _npi_table(pdf, npi_pages) if npi_pages else []
    if not npi_pages:
        pdf.cell(0, _ROW, "No NPI was found in this document.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    if pdf.will_page_break(_ROW):
        pdf.add_page()
    pdf.cell(0, _ROW, f"The document's {summary.total_pages} pages follow, unchanged, from page "
                      f"{pdf.page_no() + 1} of this PDF.", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output()), links


def _batch_confidence(batch: BatchConfidence) -> str:
    pages = (f"page {batch.first_page}" if batch.first_page == batch.last_page
             else f"pages {batch.first_page}-{batch.last_page}")
    return f"{pages}: " + ("no OCR" if batch.confidence is None else f"{_number(batch.confidence, 1)}%")


def _npi_table(pdf: FPDF, npi_pages: list[NpiPage]) -> list[_Link]:
    """One row per NPI (or per page when its NPIs were not recorded), the
    header repeated on each cover page; every row links to its page."""
    links = []
    width = sum(column_width for _, column_width in _COLUMNS)
    _table_header(pdf)
    for page in npi_pages:
        for finding in page.findings or [None]:
            if pdf.will_page_break(_ROW):
                pdf.add_page()
                _table_header(pdf)
            top = pdf.get_y()
            cells = [str(page.number), "(not recorded)", "", ""] if finding is None else [
                str(page.number), _latin1(mask_npi(finding.npi)), "yes" if finding.labelled else "no",
                _number(finding.score, 2)]
            for text, (_, column_width) in zip(cells, _COLUMNS, strict=True):
                pdf.cell(column_width, _ROW, text)
            pdf.ln(_ROW)
            links.append(_Link(pdf.page_no() - 1, (_MARGIN, pdf.h - top - _ROW, _MARGIN + width, pdf.h - top),
                               page.number))
    return links


def _table_header(pdf: FPDF) -> None:
    pdf.set_font("Helvetica", style="B", size=10)
    for title, column_width in _COLUMNS:
        pdf.cell(column_width, _ROW, title, border="B")
    pdf.ln(_ROW + 2)
    pdf.set_font("Helvetica", size=10)


def _latin1(text: str) -> str:
    """Text the core fonts can show: common punctuation spelt in ASCII,
    anything else outside latin-1 (and control characters) as '?'."""
    text = unicodedata.normalize("NFC", text).translate(_PUNCTUATION)
    return "".join(c if " " <= c <= "~" or "\xa0" <= c <= "\xff" else "?" for c in text)


def _number(value: float, places: int) -> str:
    return f"{value:.{places}f}".rstrip("0").rstrip(".")


# -- navigation ---------------------------------------------------------------------

def _link_rows(pdf: pikepdf.Pdf, links: list[_Link], cover_pages: int) -> None:
    for link in links:
        target = pdf.pages[cover_pages + link.page - 1].obj
        page = pdf.pages[link.cover_page].obj
        if Name.Annots not in page:
            page.Annots = pdf.make_indirect(Array())
        page.Annots.append(pdf.make_indirect(Dictionary(
            Type=Name.Annot, Subtype=Name.Link, Rect=Array(link.rect), Border=Array([0, 0, 0]),
            Dest=Array([target, Name.Fit]))))


def _add_outline(pdf: pikepdf.Pdf, npi_pages: list[NpiPage], cover_pages: int, document_pages: int) -> None:
    """Put "NPI summary" (with "Page 7 — NPI" under it) and "Document" in
    front of whatever outline the source has."""
    summary = OutlineItem("NPI summary", 0)
    summary.children = [OutlineItem(f"Page {page.number} \u2014 NPI", cover_pages + page.number - 1)
                        for page in npi_pages]
    with pdf.open_outline() as outline:
        outline.root[0:0] = [summary, OutlineItem(f"Document ({document_pages} pages)", cover_pages)]
    if Name.PageMode not in pdf.Root:
        pdf.Root.PageMode = Name.UseOutlines


def _label_pages(pdf: pikepdf.Pdf, cover_pages: int) -> None:
    """Cover pages labelled "Cover 1", ...; the document's own labels (or
    1, 2, ...) moved past them."""
    own = dict(NumberTree(pdf.Root.PageLabels).items()) if Name.PageLabels in pdf.Root else {}
    own.setdefault(0, Dictionary(S=Name.D))
    labels = NumberTree.new(pdf)
    labels[0] = Dictionary(S=Name.D, P=pikepdf.String("Cover "))
    for index, label in own.items():
        labels[index + cover_pages] = label
    pdf.Root.PageLabels = labels.obj
