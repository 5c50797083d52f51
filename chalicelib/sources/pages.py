"""The pages of multi-page documents (TIFF, PDF): found once by the
dispatcher, read a batch at a time by workers, each reading only its pages.

TIFF. A multi-page TIFF is a chain of page directories (IFDs), each pointing
at its page's data and at the next directory. The dispatcher walks the chain
once with ranged reads (tifffile parses it; nothing is decoded) and notes,
for each page, its size and the span of bytes it uses. A batch's message
carries its pages' directories and the regions of bytes they use; the worker
fetches those (usually one ranged read) into a sparse file and, for each
page in turn, points the file's header at that page's directory: to Pillow
the file is that one page, and a damaged neighbour cannot take it down.
Pillow (with libtiff) decodes every compression TIFF uses: none, LZW,
PackBits, CCITT G3/G4, JPEG, Deflate.

PDF. pdfium reads a PDF lazily from any seekable stream, so a ranged reader
over the object is all a worker needs: it loads the cross-reference table
and its own pages' objects. A page's text layer is taken when it has one;
otherwise the page is rendered for OCR.

A page too large to decode safely (more pixels than the limit: a page bomb;
for a PDF also an image past the limit, or content streams that would
inflate past MAX_PAGE_CONTENT_BYTES) or damaged is that page's PageError; a
file whose structure cannot be read at all is an InputError for the job.
"""
from __future__ import annotations

import contextlib
import logging
import struct
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..jobs.model import InputError, ServiceError
from ..jobs.ports import BlobStore
from .ranged import open_ranged, read_error

#: a job's document may have at most this many pages
MAX_PAGES = 10_000
#: the resolution a PDF page without a text layer is rendered at for OCR
RENDER_DPI = 300
#: a PDF page's text layer counts when it has at least this many letters or digits
MIN_TEXT_LAYER_CHARS = 16


class PageError(Exception):
    """One page cannot be read; the message says why."""


#: bytes between two regions of a batch that are fetched rather than skipped
_GAP_BYTES = 64 * 1024


@dataclass(frozen=True)
class TiffPageSpan:
    #: where the page's directory starts, and the regions of bytes the page
    #: uses (directory, out-of-line tag values, image data), merged
    ifd: int
    regions: tuple[tuple[int, int], ...]
    width: int
    height: int


@dataclass(frozen=True)
class Layout:
    kind: str  # "tiff" or "pdf"
    count: int
    #: TIFF only: each page's span, and how the file's header is written
    tiff_pages: tuple[TiffPageSpan, ...] = ()
    byteorder: str = "<"
    bigtiff: bool = False
    size: int = 0

    def batch(self, first: int, last: int) -> dict[str, Any]:
        """The chunk message's description of pages first..last (1-based,
        inclusive): enough to read them and nothing else."""
        location: dict[str, Any] = {"kind": self.kind, "first": first, "last": last}
        if self.kind == "tiff":
            spans = self.tiff_pages[first - 1:last]
            location.update(
                byteorder=self.byteorder, bigtiff=self.bigtiff, size=self.size,
                ifds=[s.ifd for s in spans],
                regions=_merged([r for s in spans for r in s.regions]),
                sizes=[[s.width, s.height] for s in spans])
        return location


# -- the dispatcher: counting and locating pages -----------------------------------

def read_layout(blobs: BlobStore, key: str, kind: str) -> Layout:
    if kind == "tiff":
        return _tiff_layout(blobs, key)
    if kind == "pdf":
        return Layout("pdf", _pdf_page_count(blobs, key))
    raise ValueError(f"no pages in a {kind!r} file")


def _tiff_layout(blobs: BlobStore, key: str) -> Layout:
    import tifffile  # imported on first use: only page jobs pay for it

    size = blobs.head(key).size
    spans: list[TiffPageSpan] = []
    # tifffile logs a broken link in the chain of pages ("invalid page
    # offset") and stops there: the pages after it would be silently missing
    # from every count. Its other complaints are about one page, whose
    # worker will say so.
    with _logged_errors("tifffile") as logged:
        try:
            with tifffile.TiffFile(open_ranged(blobs, key, size)) as tiff:
                for page in tiff.pages:
                    if len(spans) >= MAX_PAGES:
                        raise InputError(f"the TIFF has more than {MAX_PAGES:,} pages; split it "
                                         "into several files")
                    spans.append(_span(page))
                byteorder, bigtiff = tiff.byteorder, tiff.is_bigtiff
        except (InputError, ServiceError):
            raise  # a throttled read is tried again, not taken for a damaged file
        except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds for damaged files
            raise InputError(f"the TIFF cannot be read ({_reason(exc)})") from None
    broken = [message for message in logged if "invalid page offset" in message]
    if broken:
        where = f"after page {len(spans)}" if spans else "at its first page"
        raise InputError(f"the TIFF is damaged {where}: the link to the next page points nowhere "
                         f"({broken[0]})")
    if not spans:
        raise InputError("the TIFF has no pages")
    return Layout("tiff", len(spans), tuple(spans), byteorder, bigtiff, size)


@contextlib.contextmanager
def _logged_errors(logger_name: str) -> Iterator[list[str]]:
    """The ERROR messages a library logs inside the block, kept, not printed."""
    logger, messages = logging.getLogger(logger_name), []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler, propagate = Keep(logging.ERROR), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _span(page: Any) -> TiffPageSpan:
    """Everything one page's directory points at, and the directory itself."""
    # An entry is tag, type, count and a value field that holds the value
    # itself when it fits, else the offset of where it is stored.
    count_size, entry, value_field = (8, 20, 8) if page.parent.is_bigtiff else (2, 12, 4)
    ifd_end = page.offset + count_size + entry * len(page.tags) + value_field  # + next-IFD pointer
    regions = [(page.offset, ifd_end)]
    for tag in page.tags.values():
        if tag.valueoffset != tag.offset + entry - value_field:  # stored outside the directory
            regions.append((tag.valueoffset, tag.valueoffset + tag.valuebytecount))
    regions += [(offset, offset + size) for offset, size
                in zip(page.dataoffsets, page.databytecounts, strict=False) if size]
    return TiffPageSpan(page.offset, tuple(map(tuple, _merged(regions))),
                        int(page.imagewidth), int(page.imagelength))


def _merged(regions: list[tuple[int, int]]) -> list[list[int]]:
    """Regions sorted and joined where they touch or nearly do: one ranged
    read per run of neighbouring bytes."""
    merged: list[list[int]] = []
    for start, end in sorted(regions):
        if merged and start <= merged[-1][1] + _GAP_BYTES:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _pdf_page_count(blobs: BlobStore, key: str) -> int:
    import pypdfium2 as pdfium

    try:
        with pdfium.PdfDocument(stream := open_ranged(blobs, key)) as pdf:
            count = len(pdf)
    except pdfium.PdfiumError as exc:
        _reraise_read_error(stream)
        raise InputError(f"the PDF cannot be read ({_reason(exc)})") from None
    if count == 0:
        raise InputError("the PDF has no pages")
    if count > MAX_PAGES:
        raise InputError(f"the PDF has {count:,} pages; a job reads at most {MAX_PAGES:,}: split it")
    return count


# -- the worker: one batch's pages -------------------------------------------------

@dataclass
class Page:
    number: int
    #: the page's own text, when it has a text layer (a PDF made from text)
    text_layer: str | None
    #: the page as an image, decoded when called (never for a text layer)
    image: Callable[[], Any]


@contextlib.contextmanager
def open_batch(blobs: BlobStore, key: str, location: dict[str, Any], max_pixels: int) -> Iterator[list[Page]]:
    """The batch's pages in order, readable inside the `with` block. A page
    that cannot be read raises PageError when its image is asked for, so the
    caller can go on with the next."""
    opener = _tiff_pages if location["kind"] == "tiff" else _pdf_pages
    with opener(blobs, key, location, max_pixels) as pages:
        yield pages


@contextlib.contextmanager
def _tiff_pages(blobs: BlobStore, key: str, location: dict[str, Any],
                max_pixels: int) -> Iterator[list[Page]]:
    with _batch_file(blobs, key, location) as file:
        yield [Page(number, None, _tiff_decoder(file, location, ifd, number, width, height, max_pixels))
               for number, ifd, (width, height) in zip(
                   range(location["first"], location["last"] + 1), location["ifds"], location["sizes"],
                   strict=True)]


def _tiff_decoder(file: BinaryIO, location: dict[str, Any], ifd: int, number: int, width: int,
                  height: int, max_pixels: int) -> Callable[[], Any]:
    """Decodes one page on its own: the header is pointed at its directory,
    so a damaged neighbour cannot take it down too."""
    from PIL import Image

    def decode():
        _check_pixels(number, width, height, max_pixels)
        file.seek(0)
        file.write(_header(location["byteorder"], location["bigtiff"], ifd))
        file.seek(0)
        try:
            # Pillow warns about what it skips in a damaged page; the error says it.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(file, formats=["TIFF"]) as image:
                    image.load()
                    return image.copy()
        except Exception as exc:  # noqa: BLE001 - decoders raise OSError, SyntaxError...
            raise PageError(f"page {number} is damaged ({_reason(exc)})") from None

    return decode


def _header(byteorder: str, bigtiff: bool, first_ifd: int) -> bytes:
    mark = b"II" if byteorder == "<" else b"MM"
    if bigtiff:
        return struct.pack(byteorder + "2sHHHQ", mark, 43, 8, 0, first_ifd)
    return struct.pack(byteorder + "2sHI", mark, 42, first_ifd)


@contextlib.contextmanager
def _batch_file(blobs: BlobStore, key: str, location: dict[str, Any]) -> Iterator[BinaryIO]:
    """The TIFF as the batch needs it: a sparse temporary file of the
    document's size holding, at their own offsets, the batch's bytes; the
    rest is a hole that takes no disk and is never read. Pillow hands libtiff
    the file itself, so offsets inside the pages need no rewriting."""
    with tempfile.TemporaryFile(prefix="sluice-pages-") as file:
        for start, end in location["regions"]:
            file.seek(start)
            file.write(blobs.read_range(key, start, end))
        file.truncate(location["size"])
        yield file


@contextlib.contextmanager
def _pdf_pages(blobs: BlobStore, key: str, location: dict[str, Any],
               max_pixels: int) -> Iterator[list[Page]]:
    import pypdfium2 as pdfium

    stream = open_ranged(blobs, key)
    try:
        pdf = pdfium.PdfDocument(stream)
    except pdfium.PdfiumError as exc:
        _reraise_read_error(stream)
        raise InputError(f"the PDF cannot be read ({_reason(exc)})") from None
    bombs = _PdfBombCheck(blobs, key, max_pixels)
    with pdf:
        pages = []
        for number in range(location["first"], location["last"] + 1):
            problem = bombs.problem(number)
            if problem:
                pages.append(Page(number, None, _fails(PageError(problem))))
                continue
            try:
                page = pdf[number - 1]
                text = page.get_textpage().get_text_range()
            except pdfium.PdfiumError as exc:
                _reraise_read_error(stream)
                damaged = PageError(f"page {number} is damaged ({_reason(exc)})")
                pages.append(Page(number, None, _fails(damaged)))
                continue
            if sum(ch.isalnum() for ch in text) >= MIN_TEXT_LAYER_CHARS:
                pages.append(Page(number, text, _fails(PageError(f"page {number} has a text layer"))))
            else:
                pages.append(Page(number, None, _renderer(page, number, stream, max_pixels)))
        yield pages


class _PdfBombCheck:
    """A PDF page that would make pdfium inflate gigabytes, looked for before
    pdfium parses it: pdfium inflates a page's content streams whole to read
    its text, and decodes each image at its full size to render it. pypdf
    reads the page's dictionaries (never decoding a stream): each image's
    declared size, and each Flate content stream inflated up to a cap."""

    def __init__(self, blobs: BlobStore, key: str, max_pixels: int):
        self._blobs, self._key, self._max_pixels = blobs, key, max_pixels
        self._reader: Any = None

    def problem(self, number: int) -> str | None:
        try:
            if self._reader is None:
                import pypdf

                self._reader = pypdf.PdfReader(open_ranged(self._blobs, self._key), strict=False)
            page = self._reader.pages[number - 1]
            return self._image_problem(number, page) or self._content_problem(number, page)
        except ServiceError:
            raise  # a throttled read: the chunk is tried again
        except Exception:  # noqa: BLE001 - what pypdf cannot read, pdfium judges and names
            return None

    def _content_problem(self, number: int, page: Any) -> str | None:
        packed = inflated = 0
        forms = (xobject for kind, xobject in _xobjects(page.get("/Resources")) if kind == "/Form")
        for stream in [*_content_streams(page), *forms]:
            packed += len(stream._data)
            allowed = min(MAX_PAGE_CONTENT_BYTES, max(BOMB_GRACE_BYTES, BOMB_RATIO * packed))
            inflated += _inflated_size(stream, allowed + 1 - inflated)
            if inflated > MAX_PAGE_CONTENT_BYTES or (inflated > BOMB_GRACE_BYTES
                                                     and inflated > BOMB_RATIO * max(packed, 1)):
                return (f"page {number}'s content would inflate from {packed:,} bytes to more than "
                        f"{inflated - 1:,}: a decompression bomb, too large to read safely")
        return None

    def _image_problem(self, number: int, page: Any) -> str | None:
        for kind, image in _xobjects(page.get("/Resources")):
            width, height = _number(image.get("/Width")), _number(image.get("/Height"))
            if kind == "/Image" and width * height > self._max_pixels:
                return (f"page {number} holds an image of {width:,} x {height:,} pixels "
                        f"({width * height:,}), over the limit of {self._max_pixels:,}: too large "
                        "to decode safely")
        return None


#: what a page's content streams may inflate to in all; past BOMB_GRACE_BYTES
#: at most BOMB_RATIO times their packed size (content compresses 3 to 10 times)
MAX_PAGE_CONTENT_BYTES = 256 * 1024 * 1024
BOMB_GRACE_BYTES = 64 * 1024 * 1024
BOMB_RATIO = 100
_FLATE = ("/FlateDecode", "/Fl")


def _content_streams(page: Any) -> Iterator[Any]:
    contents = page.get("/Contents")
    contents = contents.get_object() if contents is not None else None
    for item in contents if isinstance(contents, list) else [contents] if contents is not None else []:
        stream = item.get_object()
        if hasattr(stream, "_data"):
            yield stream


def _inflated_size(stream: Any, cap: int) -> int:
    """What a stream decodes to, counted up to `cap` (cap + 1 past it); a
    stream not Flate-encoded first counts as its own size."""
    filters = stream.get("/Filter")
    filters = filters.get_object() if filters is not None else None
    filters = list(filters) if isinstance(filters, list) else [filters] if filters else []
    if not filters or filters[0] not in _FLATE:
        return len(stream._data)
    inflater, data, total = zlib.decompressobj(), stream._data, 0
    try:
        while data and total <= cap and not inflater.eof:
            total += len(inflater.decompress(data, 1024 * 1024))
            data = inflater.unconsumed_tail
    except zlib.error:
        pass  # damaged: pdfium reads what it can
    return total


def _xobjects(resources: Any, depth: int = 0, seen: set[int] | None = None) -> Iterator[tuple[str, Any]]:
    """(subtype, stream) of the images and forms a page's resources name,
    forms' own resources included, and the images' soft masks."""
    seen = set() if seen is None else seen
    resources = resources.get_object() if resources is not None else None
    if not hasattr(resources, "get") or depth > 8:
        return
    xobjects = resources.get("/XObject")
    xobjects = xobjects.get_object() if xobjects is not None else {}
    for ref in xobjects.values():
        xobject = ref.get_object()
        if id(xobject) in seen or not hasattr(xobject, "_data"):
            continue
        seen.add(id(xobject))
        kind = xobject.get("/Subtype")
        yield kind, xobject
        if kind == "/Image" and xobject.get("/SMask") is not None:
            yield kind, xobject["/SMask"].get_object()
        elif kind == "/Form":
            yield from _xobjects(xobject.get("/Resources"), depth + 1, seen)


def _number(value: Any) -> int:
    value = value.get_object() if hasattr(value, "get_object") else value
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _renderer(page: Any, number: int, stream: Any, max_pixels: int) -> Callable[[], Any]:
    """Renders the page for OCR at RENDER_DPI, or smaller if that would pass
    the pixel limit (a poster-sized page is still read, at what fits)."""
    import pypdfium2 as pdfium

    def render():
        width, height = page.get_size()
        # Just under the limit: the renderer rounds each side up.
        scale = min(RENDER_DPI / 72, 0.995 * (max_pixels / max(1.0, width * height)) ** 0.5)
        try:
            return page.render(scale=scale, grayscale=True).to_pil()
        except pdfium.PdfiumError as exc:
            _reraise_read_error(stream)
            raise PageError(f"page {number} is damaged ({_reason(exc)})") from None
    return render


def _reraise_read_error(stream: Any) -> None:
    """pdfium turns a failed read into "damaged": raise what the read met."""
    error = read_error(stream)
    if error is not None:
        raise error


def _fails(error: Exception) -> Callable[[], Any]:
    def raise_it():
        raise error
    return raise_it


def _check_pixels(number: int, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise PageError(f"page {number} is {width:,} x {height:,} pixels ({width * height:,}), over "
                        f"the limit of {max_pixels:,}: too large to decode safely")


def _reason(exc: Exception) -> str:
    # pdfium reports a document it could not parse at all as "(PDFium: Success)"
    text = str(exc).replace(" (PDFium: Success)", "").strip()
    return text or type(exc).__name__
