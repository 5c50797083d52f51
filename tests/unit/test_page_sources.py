"""Pages of TIFFs and PDFs: counted and located once, each batch read alone
(one ranged read, never the rest of the file), decoded exactly as Pillow
decodes the whole file, and refused page by page when unsafe or damaged."""
from __future__ import annotations

import io

import img2pdf
import numpy
import pypdf
import pypdfium2
import pytest
import tifffile
from fpdf import FPDF
from PIL import Image, ImageDraw

from chalicelib.jobs.memory import MemoryBlobStore
from chalicelib.jobs.model import InputError
from chalicelib.sources.pages import MAX_PAGES, PageError, open_batch, read_layout
from tests.corpus.make_corpus import pdf_content_bomb, pdf_image_bomb

COMPRESSIONS = ["raw", "tiff_lzw", "packbits", "group3", "group4", "jpeg", "tiff_adobe_deflate"]


class _CountingBlobs(MemoryBlobStore):
    def __init__(self):
        super().__init__()
        self.reads: list[tuple[int, int | None]] = []

    def read_range(self, key, start, end):
        self.reads.append((start, end))
        return super().read_range(key, start, end)


def _pages(count: int, mode: str, size=(320, 240)) -> list[Image.Image]:
    pages = []
    for number in range(1, count + 1):
        page = Image.new(mode, size, "white")
        ImageDraw.Draw(page).text((20, 20 + number), f"page {number}", fill="black")
        pages.append(page)
    return pages


def _tiff(pages: list[Image.Image], compression: str) -> bytes:
    buffer = io.BytesIO()
    pages[0].save(buffer, format="TIFF", save_all=True, append_images=pages[1:], compression=compression)
    return buffer.getvalue()


def _decoded_whole(data: bytes) -> list[bytes]:
    with Image.open(io.BytesIO(data)) as image:
        frames = []
        for index in range(image.n_frames):
            image.seek(index)
            frames.append(image.convert("L").tobytes())
        return frames


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_a_batch_is_one_ranged_read_and_decodes_as_the_whole_file_does(compression):
    mode = "1" if compression.startswith("group") else "L"
    data = _tiff(_pages(12, mode), compression)
    blobs = _CountingBlobs()
    blobs.put("doc.tiff", data)
    layout = read_layout(blobs, "doc.tiff", "tiff")
    assert layout.count == 12
    blobs.reads.clear()
    with open_batch(blobs, "doc.tiff", layout.batch(6, 10), max_pixels=10**8) as pages:
        images = [page.image() for page in pages]
    assert [page.number for page in pages] == [6, 7, 8, 9, 10]
    assert [image.convert("L").tobytes() for image in images] == _decoded_whole(data)[5:10]
    assert len(blobs.reads) == 1
    [(start, end)] = blobs.reads
    # Only the batch's own bytes: less than the file, none of page 1's.
    assert end - start < len(data) / 2 and start > layout.tiff_pages[0].regions[-1][1] - 1


def test_a_bigtiff_is_read_too():
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer, bigtiff=True) as writer:
        for page in _pages(7, "L"):
            writer.write(numpy.asarray(page), photometric="minisblack")
    data = buffer.getvalue()
    blobs = MemoryBlobStore()
    blobs.put("big.tiff", data)
    layout = read_layout(blobs, "big.tiff", "tiff")
    assert layout.bigtiff and layout.count == 7
    with open_batch(blobs, "big.tiff", layout.batch(5, 7), max_pixels=10**8) as pages:
        images = [p.image() for p in pages]
    assert [i.tobytes() for i in images] == [p.tobytes() for p in _pages(7, "L")[4:]]


def test_a_page_bomb_is_refused_before_it_is_decoded():
    data = bytearray(_tiff(_pages(3, "1"), "group4"))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tiff:
        tags = tiff.pages[1].tags
        width, height = tags["ImageWidth"], tags["ImageLength"]
        for tag, value in ((width, 60_000), (height, 60_000)):
            fmt = "<H" if tag.dtype == 3 else "<I"
            data[tag.valueoffset:tag.valueoffset + (2 if fmt == "<H" else 4)] = \
                int(value).to_bytes(2 if fmt == "<H" else 4, "little")
    blobs = MemoryBlobStore()
    blobs.put("bomb.tiff", bytes(data))
    layout = read_layout(blobs, "bomb.tiff", "tiff")
    with open_batch(blobs, "bomb.tiff", layout.batch(1, 3), max_pixels=150_000_000) as pages:
        assert pages[0].image().size == (320, 240)
        with pytest.raises(PageError, match=r"page 2 is 60,000 x 60,000 pixels \(3,600,000,000\), "
                                            r"over the limit of 150,000,000"):
            pages[1].image()
        assert pages[2].image().size == (320, 240)  # the rest of the batch is unharmed


@pytest.mark.parametrize("damage", ["data", "directory"])
def test_a_damaged_page_is_that_pages_error_and_its_neighbours_are_read(damage):
    data = _tiff(_pages(4, "L", size=(400, 400)), "tiff_lzw")
    blobs = MemoryBlobStore()
    blobs.put("cut.tiff", data)
    layout = read_layout(blobs, "cut.tiff", "tiff")
    # Damage page 3 in place, after the dispatcher has found it.
    page = layout.tiff_pages[2]
    with tifffile.TiffFile(io.BytesIO(data)) as tiff:
        start, size = tiff.pages[2].dataoffsets[0], tiff.pages[2].databytecounts[0]
    start, end = (start, start + size) if damage == "data" else (page.ifd, page.ifd + 40)
    broken = bytearray(data)
    broken[start:end] = b"\xff" * (end - start)
    blobs.put("cut.tiff", bytes(broken))
    with open_batch(blobs, "cut.tiff", layout.batch(1, 4), max_pixels=10**8) as pages:
        assert pages[1].image().size == (400, 400)
        with pytest.raises(PageError, match="page 3 is damaged"):
            pages[2].image()
        assert pages[3].image().size == (400, 400)


def _chain_broken_after_page_2() -> bytes:
    data = bytearray(_tiff(_pages(4, "L"), "tiff_lzw"))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tiff:
        second = tiff.pages[1]
        link = second.offset + 2 + 12 * len(second.tags)
    data[link:link + 4] = (10**9).to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize("data, words", [
    (b"II*\x00" + b"\x00" * 4 + b"junk" * 10, "the TIFF has no pages"),
    (b"MM\x00*\xff\xff\xff\xff", "the TIFF has no pages"),
    (b"II*\x00\x08", "the TIFF cannot be read"),
    (_chain_broken_after_page_2(), "damaged after page 2: the link to the next page points nowhere"),
])
def test_a_tiff_whose_structure_is_broken_fails_the_job_with_a_reason(data, words):
    blobs = MemoryBlobStore()
    blobs.put("bad.tiff", data)
    with pytest.raises(InputError, match=words):
        read_layout(blobs, "bad.tiff", "tiff")


def test_pdf_pages_give_their_text_layer_or_an_image_to_read():
    pdf = FPDF()
    pdf.set_font("Helvetica", size=14)
    for number in (1, 2):
        pdf.add_page()
        pdf.cell(0, 10, f"Page {number} of a document made from text, NPI 1234567893")
    scanned = _pages(1, "L", size=(850, 1100))[0]
    buffer = io.BytesIO()
    scanned.save(buffer, format="PNG")
    blobs = _CountingBlobs()
    blobs.put("text.pdf", bytes(pdf.output()))
    at_100_dpi = img2pdf.get_fixed_dpi_layout_fun((100, 100))
    blobs.put("scan.pdf", img2pdf.convert(buffer.getvalue(), layout_fun=at_100_dpi))
    layout = read_layout(blobs, "text.pdf", "pdf")
    assert layout.count == 2
    with open_batch(blobs, "text.pdf", layout.batch(2, 2), max_pixels=10**8) as pages:
        assert [p.number for p in pages] == [2] and "Page 2" in pages[0].text_layer
    scan = read_layout(blobs, "scan.pdf", "pdf").batch(1, 1)
    with open_batch(blobs, "scan.pdf", scan, 10**8) as [page]:
        assert page.text_layer is None
        width, height = page.image().size
        assert width == 2550 and abs(height - 3300) <= 1  # 8.5 x 11 in at 300 dpi
    # A page that would render past the pixel limit renders smaller instead.
    with open_batch(blobs, "scan.pdf", scan, 1_000_000) as [page]:
        width, height = page.image().size
    assert width * height <= 1_000_000 and width > 800


def test_documents_past_the_page_limit_and_pdfs_that_are_not_say_so(monkeypatch):
    blobs = MemoryBlobStore()
    blobs.put("junk.pdf", b"%PDF-1.7\n" + b"\x00" * 100)
    with pytest.raises(InputError, match="the PDF cannot be read"):
        read_layout(blobs, "junk.pdf", "pdf")
    monkeypatch.setattr("chalicelib.sources.pages.MAX_PAGES", 5)
    blobs.put("long.tiff", _tiff(_pages(6, "1"), "group4"))
    with pytest.raises(InputError, match="more than 5 pages"):
        read_layout(blobs, "long.tiff", "tiff")
    assert MAX_PAGES == 10_000


def test_a_pdf_pdfium_cannot_parse_at_all_says_so_without_pdfiums_success_code():
    empty = io.BytesIO()
    pypdf.PdfWriter().write(empty)  # a page tree with no pages
    blobs = MemoryBlobStore()
    blobs.put("none.pdf", empty.getvalue())
    with pytest.raises(InputError, match=r"^the PDF cannot be read \(Failed to load document") as refused:
        read_layout(blobs, "none.pdf", "pdf")
    # pdfium's last error can be stale: "Success" then says nothing true
    assert "Success" not in str(refused.value)


def test_pdfiums_stale_success_code_is_left_out_of_the_reason(monkeypatch):
    def refuse(*args, **kwargs):
        raise pypdfium2.PdfiumError("Failed to load document (PDFium: Success).")

    monkeypatch.setattr(pypdfium2, "PdfDocument", refuse)
    blobs = MemoryBlobStore()
    blobs.put("odd.pdf", b"%PDF-1.7\n")
    with pytest.raises(InputError, match=r"^the PDF cannot be read \(Failed to load document\.\)$"):
        read_layout(blobs, "odd.pdf", "pdf")


def test_a_pdf_page_that_would_inflate_gigabytes_is_refused_before_pdfium_parses_it():
    blobs = MemoryBlobStore()
    blobs.put("content.pdf", pdf_content_bomb(300 * 2**20))
    blobs.put("image.pdf", pdf_image_bomb(20_000, 20_000))
    for key, words in (("content.pdf", r"page 1's content would inflate from [\d,]+ bytes to more than "
                                       r"[\d,]+: a decompression bomb"),
                       ("image.pdf", r"page 1 holds an image of 20,000 x 20,000 pixels \(400,000,000\), "
                                     r"over the limit of 150,000,000")):
        with open_batch(blobs, key, read_layout(blobs, key, "pdf").batch(1, 1), 150_000_000) as [page]:
            with pytest.raises(PageError, match=words):
                page.image()
    # under the limits, the same pages are read
    blobs.put("small.pdf", pdf_image_bomb(400, 300))
    small = read_layout(blobs, "small.pdf", "pdf").batch(1, 1)
    with open_batch(blobs, "small.pdf", small, 150_000_000) as [page]:
        assert page.text_layer is None and page.image().size[0] == 2550  # Letter at 300 dpi
