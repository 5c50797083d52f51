"""The NPI PDF: cover pages listing the pages where NPIs were found, then
every page of the document unchanged. Inputs are made here (Pillow, fpdf2,
pikepdf); the output is read back with pikepdf (images, streams, outline,
links, page labels), pypdf (the cover's text) and pdfium (what a viewer shows)."""
from __future__ import annotations

import io
import re
from pathlib import Path

import img2pdf
import pikepdf
import pypdfium2
import pytest
from fpdf import FPDF
from PIL import Image, ImageChops, ImageDraw, ImageFont, TiffImagePlugin
from pypdf import PdfReader

from chalicelib.reports import pdf as pdf_module
from chalicelib.reports.pdf import (
    BatchConfidence,
    NpiFinding,
    NpiPage,
    NpiPdfSummary,
    PdfBuildError,
    PdfStats,
    mask_npi,
    write_npi_pdf,
)

FONT = ImageFont.load_default(size=40)
SIZE = (600, 400)
# (Pillow's compression, page mode, the filter the page's image should have in the PDF)
COMPRESSIONS = [
    ("raw", "L", "/FlateDecode"),
    ("tiff_lzw", "RGB", "/FlateDecode"),
    ("packbits", "P", "/FlateDecode"),
    ("tiff_adobe_deflate", "RGB", "/FlateDecode"),
    ("group3", "1", "/CCITTFaxDecode"),  # decoded, stored as G4 by img2pdf
    ("group4", "1", "/CCITTFaxDecode"),
    ("jpeg", "RGB", "/DCTDecode"),
    ("jpeg", "L", "/DCTDecode"),
]


def text_page(mode: str, text: str, size: tuple[int, int] = SIZE) -> Image.Image:
    """A page of text over a colour gradient, so every pixel value matters."""
    page = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(page)
    for x in range(0, size[0], 4):
        draw.rectangle((x, size[1] - 90, x + 3, size[1] - 10), fill=(x % 256, (3 * x) % 256, 255 - x % 256))
    draw.text((30, 30), text, fill=(150, 10, 10), font=FONT)
    return page.convert(mode)


def write_tiff(path: Path, pages: list[tuple[Image.Image, dict]]) -> Path:
    """A multi-page TIFF whose pages may each have their own compression and resolution."""
    with TiffImagePlugin.AppendingTiffWriter(str(path), new=True) as tiff:
        for page, options in pages:
            page.save(tiff, "TIFF", **options)
            tiff.newFrame()
    return path


def summary(pages: int, npis: dict[int, list[tuple[str, bool, float]]] | None = None,
            name: str = "scan.tif", batches=()) -> NpiPdfSummary:
    npi_pages = [NpiPage(number, [NpiFinding(*finding) for finding in findings])
                 for number, findings in sorted((npis or {}).items())]
    return NpiPdfSummary(name, pages, npi_pages, 100 * len(npi_pages) / pages, batches)


def build(source: Path, npi_summary: NpiPdfSummary, kind: str = "tiff") -> tuple[PdfStats, Path]:
    out = source.with_name("out.pdf")
    return write_npi_pdf(str(source), kind, str(out), npi_summary), out


def tiff_frames(path: Path) -> list[Image.Image]:
    """Pillow's decoding of each page (from a file object: by path, Pillow 13
    scrambles an uncompressed page it turns)."""
    frames = []
    with path.open("rb") as file, Image.open(file) as tiff:
        for index in range(tiff.n_frames):
            tiff.seek(index)
            frames.append(tiff.copy())
    return frames


def page_image(page: pikepdf.Page) -> pikepdf.Stream:
    (image,) = page.get_images().values()
    return image


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    mode = "L" if {a.mode, b.mode} <= {"1", "L"} else "RGB"
    return a.size == b.size and ImageChops.difference(a.convert(mode), b.convert(mode)).getbbox() is None


def strips(path: Path, frame: int = 0) -> list[bytes]:
    with Image.open(path) as tiff:
        tiff.seek(frame)
        tags = tiff.tag_v2
        spans = list(zip(tags[273], tags[279], strict=True))
    data = path.read_bytes()
    return [data[offset:offset + count] for offset, count in spans]


def entropy_coded(strip: bytes) -> bytes:
    """A JPEG strip's data after its SOS header, without the EOI."""
    sos = strip.index(b"\xff\xda")
    return strip[sos + 2 + int.from_bytes(strip[sos + 2:sos + 4], "big"):-2]


def cover_text(path: Path, cover_pages: int) -> str:
    reader = PdfReader(path)
    return "\n".join(reader.pages[i].extract_text() for i in range(cover_pages))


def cover_rows(text: str) -> list[tuple[int, str, str]]:
    return [(int(page), npi, labelled)
            for page, npi, labelled in re.findall(r"^(\d+) ?(\*+\d{4}) ?(yes|no)", text, re.M)]


@pytest.fixture
def decodes(monkeypatch):
    """The decoders Pillow starts from here on, one per image decoded."""
    calls = []
    get_decoder = Image._getdecoder

    def counting(mode, decoder_name, *args, **kwargs):
        calls.append(decoder_name)
        return get_decoder(mode, decoder_name, *args, **kwargs)

    monkeypatch.setattr(Image, "_getdecoder", counting)
    return calls


# -- TIFF pages, losslessly --------------------------------------------------------

@pytest.mark.parametrize(("compression", "mode", "image_filter"), COMPRESSIONS,
                         ids=[f"{c}-{m}" for c, m, _ in COMPRESSIONS])
def test_every_tiff_page_decodes_to_the_source_pixels(tmp_path, compression, mode, image_filter):
    source = write_tiff(tmp_path / "in.tif", [(text_page(mode, f"Page {n}"), {"compression": compression})
                                              for n in (1, 2, 3)])
    stats, out_path = build(source, summary(3, {2: [("1234567893", True, 1)]}))

    assert (stats.pages, stats.cover_pages, stats.document_pages) == (4, 1, 3)
    # 600x400 bilevel fits in one of Pillow's 64 KB strips, so its G4 data is copied too
    assert stats.copied_pages == (3 if compression in ("jpeg", "group4") else 0)
    with pikepdf.open(out_path) as out:
        assert len(out.pages) == 4
        for page, frame in zip(out.pages[1:], tiff_frames(source), strict=True):
            image = pikepdf.PdfImage(page_image(page))
            assert image.filters == [image_filter]
            assert same_pixels(image.as_pil_image(), frame)


def test_a_single_strip_g4_page_is_copied_not_decoded(tmp_path, monkeypatch, decodes):
    # A scanner's G4 page is usually one strip; Pillow's are 64 KB of pixels.
    monkeypatch.setattr(TiffImagePlugin, "STRIP_SIZE", 1 << 30)
    source = write_tiff(tmp_path / "in.tif", [(text_page("1", f"Page {n}", (1200, 1000)),
                                               {"compression": "group4"}) for n in (1, 2)])
    decodes.clear()
    stats, out_path = build(source, summary(2))

    assert decodes == [] and stats.copied_pages == 2
    with pikepdf.open(out_path) as out:
        for index, page in enumerate(out.pages[1:]):
            image = page_image(page)
            assert pikepdf.PdfImage(image).filters == ["/CCITTFaxDecode"]
            assert pikepdf.PdfImage(image).decode_parms[0].K == -1  # G4
            assert image.read_raw_bytes() == strips(source, index)[0]


def test_a_min_is_white_g4_page_keeps_its_pixels(tmp_path):
    # Fax TIFFs say 0 is white. Pillow cannot write one, so its G4 data is
    # relabelled: the same bits, read the other way round.
    buffer = io.BytesIO()
    text_page("1", "Fax").save(buffer, "TIFF", compression="group4")
    with Image.open(buffer) as written:
        data = buffer.getvalue()[written.tag_v2[273][0]:][:written.tag_v2[279][0]]
    fax = tmp_path / "fax.tif"
    fax.write_bytes(pdf_module._tiff_bytes({256: SIZE[0], 257: SIZE[1], 258: 1, 259: 4, 262: 0, 277: 1,
                                            278: SIZE[1]}, data))
    _, out_path = build(fax, summary(1))

    with pikepdf.open(out_path) as out, Image.open(fax) as expected:
        image = page_image(out.pages[1])
        assert image.read_raw_bytes() == data
        assert same_pixels(pikepdf.PdfImage(image).as_pil_image(), expected)


def test_jpeg_strips_are_joined_without_decoding(tmp_path, decodes):
    source = write_tiff(tmp_path / "in.tif", [(text_page("RGB", "Colour"), {"compression": "jpeg"}),
                                              (text_page("L", "Grey"), {"compression": "jpeg"})])
    frames = tiff_frames(source)
    decodes.clear()
    _, out_path = build(source, summary(2))

    assert decodes == []
    with pikepdf.open(out_path) as out:
        for index, page in enumerate(out.pages[1:]):
            stream = page_image(page).read_raw_bytes()
            scans = [entropy_coded(strip) for strip in strips(source, index)]
            assert len(scans) > 1  # Pillow's strips are 64 KB of pixels
            # every strip's coded data, byte for byte and in order, restart markers between them
            restarts = b"".join(bytes((0xFF, 0xD0 + i % 8)) + scan for i, scan in enumerate(scans[1:]))
            assert stream.endswith(scans[0] + restarts + b"\xff\xd9")
            assert same_pixels(Image.open(io.BytesIO(stream)), frames[index])
        # RGB, not YCbCr, says an Adobe marker, which a PDF reader needs
        assert b"\xff\xee\x00\x0eAdobe" in page_image(out.pages[1]).read_raw_bytes()
    # and a PDF renderer (pdfium) shows the very pixels Pillow reads from the TIFF
    rendered = pypdfium2.PdfDocument(out_path)[1].render(scale=1).to_pil()
    assert same_pixels(rendered, frames[0])


def test_a_ycbcr_jpeg_strip_is_embedded_byte_for_byte(tmp_path):
    # libtiff's usual colour JPEG: YCbCr, 4:2:0, one strip. Pillow cannot
    # write one, so a standalone JPEG is put in a TIFF by hand.
    jpeg = io.BytesIO()
    text_page("RGB", "YCbCr").save(jpeg, "JPEG", quality=90, subsampling="4:2:0")
    source = tmp_path / "ycbcr.tif"
    source.write_bytes(pdf_module._tiff_bytes({256: SIZE[0], 257: SIZE[1], 258: (8, 8, 8), 259: 7, 262: 6,
                                               277: 3, 278: SIZE[1], 530: (2, 2)}, jpeg.getvalue()))
    _, out_path = build(source, summary(1))

    with pikepdf.open(out_path) as out, Image.open(source) as expected:
        image = page_image(out.pages[1])
        assert pikepdf.PdfImage(image).filters == ["/DCTDecode"]
        assert image.read_raw_bytes() == jpeg.getvalue()
        assert same_pixels(pikepdf.PdfImage(image).as_pil_image(), expected)


def test_a_tiff_of_mixed_pages_keeps_each_page_and_its_size(tmp_path):
    # 1200x1000 bilevel is 3 of Pillow's 64 KB strips: decoded, and stored as G4 again
    pages = [(text_page("1", "G4", (1200, 1000)), {"compression": "group4", "dpi": (200, 200)}),
             (text_page("RGB", "JPEG"), {"compression": "jpeg", "dpi": (150, 150)}),
             (text_page("L", "LZW"), {"compression": "tiff_lzw", "dpi": (300, 100)}),
             (text_page("1", "G3"), {"compression": "group3"}),  # no resolution
             (text_page("RGBA", "alpha"), {"compression": "tiff_lzw", "dpi": (72, 72)}),
             (Image.new("I;16", SIZE, 40000), {"dpi": (100, 100)})]
    source = write_tiff(tmp_path / "mixed.tif", pages)
    stats, out_path = build(source, summary(6))

    assert stats.document_pages == 6 and stats.copied_pages == 1  # the JPEG
    assert stats.notes == ("page 6: 16-bit grey stored as a 16-bit PNG (img2pdf takes no TIFF over 8 bits)",)
    with pikepdf.open(out_path) as out:
        sizes = [tuple(float(v) for v in page.mediabox[2:]) for page in out.pages[1:]]
        # points = pixels * 72 / dpi; a page without a resolution is 72 dpi (600 px < a Letter width)
        assert sizes == [(432, 360), (288, 192), (144, 288), (600, 400), (600, 400), (432, 288)]
        for page, frame in zip(out.pages[1:], tiff_frames(source), strict=True):
            image = pikepdf.PdfImage(page_image(page))
            if frame.mode == "I;16":
                assert image.bits_per_component == 16
                assert image.as_pil_image().tobytes() == frame.tobytes()
            elif frame.mode == "RGBA":
                assert page_image(page).SMask is not None
                assert same_pixels(image.as_pil_image(), frame.convert("RGB"))
            else:
                assert same_pixels(image.as_pil_image(), frame)
        assert pikepdf.PdfImage(page_image(out.pages[1])).filters == ["/CCITTFaxDecode"]


def test_what_pillow_cannot_read_whole_is_noted_or_refused(tmp_path):
    # 16-bit RGB: Pillow reads 8 bits a sample, so that is what the PDF can have
    rgb16 = tmp_path / "rgb16.tif"
    rgb16.write_bytes(pdf_module._tiff_bytes({256: 4, 257: 2, 258: (16, 16, 16), 259: 1, 262: 2, 277: 3,
                                              278: 2}, bytes(range(48))))
    stats, out_path = build(rgb16, summary(1))
    assert stats.notes == ("page 1: 16-bit samples reduced to 8 bits (Pillow reads no more)",)
    with pikepdf.open(out_path) as out:
        assert list(out.pages[1].mediabox) == [0, 0, 4, 3]  # 2 pixels high, but a page is 3 points at least

    floats = write_tiff(tmp_path / "float.tif", [(Image.new("L", (4, 2)), {}),
                                                 (Image.new("F", (4, 2), 0.5), {})])
    with pytest.raises(PdfBuildError, match="page 2 of the TIFF has F pixels, which a PDF cannot hold"):
        build(floats, summary(2))


def test_a_turned_tiff_page_is_shown_as_its_orientation_says(tmp_path):
    pixels = text_page("1", "up", (100, 50))
    turned = pixels.transpose(Image.Transpose.ROTATE_270)  # a quarter clockwise
    orientation_6 = {"tiffinfo": {274: 6}}  # show the stored pixels a quarter turned clockwise
    source = write_tiff(tmp_path / "in.tif", [(pixels, {"compression": "raw", **orientation_6}),
                                              (pixels, {"compression": "group4", **orientation_6})])
    _, out_path = build(source, summary(2))

    with pikepdf.open(out_path) as out:
        decoded, copied = out.pages[1:]
        # Pillow turns the pixels of a page it decodes; a copied page is turned by the viewer
        assert (list(decoded.mediabox), decoded.obj.get(pikepdf.Name.Rotate)) == ([0, 0, 50, 100], None)
        assert same_pixels(pikepdf.PdfImage(page_image(decoded)).as_pil_image(), turned)
        assert (list(copied.mediabox), copied.obj.get(pikepdf.Name.Rotate)) == ([0, 0, 100, 50], 90)
        assert same_pixels(pikepdf.PdfImage(page_image(copied)).as_pil_image(), pixels)


def test_a_200_page_tiff_is_read_a_page_at_a_time(tmp_path, decodes):
    source = write_tiff(tmp_path / "long.tif", [(Image.new("L", (40, 30), n), {"compression": "tiff_lzw"})
                                                for n in range(200)])
    decodes.clear()
    stats, _ = build(source, summary(200))

    assert stats.document_pages == 200
    # each page is decoded once, from the TIFF (img2pdf embeds the PNG it is given as it is)
    assert decodes == ["libtiff"] * 200


# -- the cover ---------------------------------------------------------------------

def test_the_cover_lists_the_npi_pages_and_links_to_them(tmp_path):
    source = write_tiff(tmp_path / "in.tif", [(text_page("L", f"Page {n}", (200, 100)),
                                               {"compression": "packbits"}) for n in range(1, 13)])
    npis = {3: [("1234567893", True, 0.97)], 5: [],  # page 5: only its number was recorded
            7: [("******1234", False, 0.5), ("9876543210", True, 0.875)], 12: [("1111111112", False, 0.61)]}
    batches = [BatchConfidence(1, 10, 87.4), BatchConfidence(11, 11, None), BatchConfidence(12, 12, 90)]
    stats, out_path = build(source, summary(12, npis, batches=batches))

    assert (stats.pages, stats.cover_pages) == (13, 1)
    text = cover_text(out_path, 1)
    assert cover_rows(text) == [(3, "******7893", "yes"), (7, "******1234", "no"), (7, "******3210", "yes"),
                                (12, "******1112", "no")]
    assert "\n5 (not recorded)\n" in text
    assert "Pages with an NPI: 4 (33.3% of pages). NPIs found: 4, 2 of them next to the word \"NPI\"" in text
    assert "OCR confidence by batch: pages 1-10: 87.4%; page 11: no OCR; page 12: 90%." in text
    assert "The document's 12 pages follow, unchanged, from page 2 of this PDF." in text
    everything = "".join(page.extract_text() for page in PdfReader(out_path).pages)
    assert not re.search(r"\d{5}", everything)  # no NPI shown beyond its last 4 digits

    with pikepdf.open(out_path) as out:
        def index_of(page_object):
            return [page.obj.objgen for page in out.pages].index(page_object.objgen)

        links = [annot for annot in out.pages[0].obj.Annots if annot.Subtype == pikepdf.Name.Link]
        assert [index_of(link.Dest[0]) for link in links] == [3, 5, 7, 7, 12]  # cover + page - 1
        with out.open_outline() as outline:
            npi_summary, document = outline.root[:2]
            assert (npi_summary.title, index_of(npi_summary.destination[0])) == ("NPI summary", 0)
            assert [(item.title, index_of(item.destination[0])) for item in npi_summary.children] == [
                ("Page 3 \u2014 NPI", 3), ("Page 5 \u2014 NPI", 5), ("Page 7 \u2014 NPI", 7),
                ("Page 12 \u2014 NPI", 12)]
            assert (document.title, index_of(document.destination[0])) == ("Document (12 pages)", 1)
        assert [page.label for page in out.pages] == ["Cover 1"] + [str(n) for n in range(1, 13)]


def test_no_npi_pages_make_a_cover_that_says_so(tmp_path):
    source = write_tiff(tmp_path / "in.tif", [(text_page("1", "Nothing"), {"compression": "group4"})])
    stats, out_path = build(source, summary(1))

    text = cover_text(out_path, stats.cover_pages)
    assert stats.cover_pages == 1 and "No NPI was found in this document." in text
    assert "Pages with an NPI: 0 (0% of pages)" in text and cover_rows(text) == []
    with pikepdf.open(out_path) as out, out.open_outline() as outline:
        assert outline.root[0].children == []


def test_300_npi_pages_flow_onto_several_cover_pages(tmp_path):
    source = tmp_path / "long.pdf"
    with pikepdf.new() as document:
        for _ in range(300):
            document.add_blank_page()
        document.save(source)
    npis = {n: [(f"{n:010d}", n % 2 == 0, 0.9)] for n in range(1, 301)}
    stats, out_path = build(source, summary(300, npis, name="long.pdf"), "pdf")

    assert stats.cover_pages > 5 and stats.pages == stats.cover_pages + 300
    text = cover_text(out_path, stats.cover_pages)
    assert cover_rows(text) == [(n, f"******{n:04d}", "no" if n % 2 else "yes") for n in range(1, 301)]
    assert text.count('Next to "NPI"') == stats.cover_pages  # the header on every cover page
    assert f"cover page {stats.cover_pages} of {stats.cover_pages}" in text
    assert f"from page {stats.cover_pages + 1} of this PDF" in text
    with pikepdf.open(out_path) as out:
        assert sum(len(out.pages[i].obj.Annots) for i in range(stats.cover_pages)) == 300


def test_cover_text_is_made_latin1_safe_and_npis_are_masked(tmp_path):
    assert mask_npi("1234567893") == mask_npi("******7893") == "******7893"
    source = write_tiff(tmp_path / "in.tif", [(text_page("L", "x", (100, 50)), {"compression": "raw"})])
    _, out_path = build(source, summary(1, {1: [("1234567893", True, 1.0)]},
                                        name="\u533b\u7642 \u2014 r\u00e9sum\u00e9\n.tif"))

    assert "Document: ?? - r\u00e9sum\u00e9?.tif" in cover_text(out_path, 1)


# -- PDF sources -------------------------------------------------------------------

def test_a_pdf_source_comes_through_unchanged(tmp_path):
    writer = FPDF()
    writer.set_font("Helvetica", size=14)
    for n in range(1, 4):
        writer.add_page()
        writer.cell(text=f"Page {n}: NPI 1234567893")
    writer.start_section("Chapter")
    source = tmp_path / "in.pdf"
    source.write_bytes(bytes(writer.output()))
    jpeg = io.BytesIO()
    text_page("RGB", "photo").save(jpeg, "JPEG")
    with pikepdf.open(source, allow_overwriting_input=True) as document, \
            pikepdf.open(io.BytesIO(img2pdf.convert(jpeg.getvalue()))) as photo:
        document.pages.append(photo.pages[0])
        # its own page labels: i, ii, iii, then 1
        document.Root.PageLabels = pikepdf.Dictionary(Nums=[0, pikepdf.Dictionary(S=pikepdf.Name.r),
                                                            3, pikepdf.Dictionary(S=pikepdf.Name.D)])
        document.save(source)

    stats, out_path = build(source, summary(4, {2: [("1234567893", 1, 1)]}), "pdf")

    assert (stats.pages, stats.cover_pages, stats.copied_pages) == (5, 1, 4)
    with pikepdf.open(source) as before, pikepdf.open(out_path) as after:
        for old, new in zip(before.pages, after.pages[1:], strict=True):
            assert new.mediabox == old.mediabox
            assert new.obj.Contents.read_raw_bytes() == old.obj.Contents.read_raw_bytes()
            assert set(new.Resources.keys()) == set(old.Resources.keys())
            for name, font in old.Resources.get("/Font", {}).items():
                assert new.Resources.Font[name].BaseFont == font.BaseFont
            for name, image in old.Resources.get("/XObject", {}).items():
                copy = new.Resources.XObject[name]
                assert (copy.Filter, copy.read_raw_bytes()) == (image.Filter, image.read_raw_bytes())
        with after.open_outline() as outline:  # the source's own outline follows ours
            assert [item.title for item in outline.root] == ["NPI summary", "Document (4 pages)", "Chapter"]
        assert [page.label for page in after.pages] == ["Cover 1", "i", "ii", "iii", "1"]


# -- what cannot be read -----------------------------------------------------------

@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_a_corrupt_tiff_is_a_build_error(tmp_path):
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"II*\x00" + b"\xff" * 200)
    with pytest.raises(PdfBuildError, match="the TIFF cannot be read"):
        build(garbage, summary(1))


def test_a_damaged_page_is_named(tmp_path):
    source = write_tiff(tmp_path / "in.tif", [(text_page("L", f"Page {n}"), {"compression": "raw"})
                                              for n in (1, 2, 3)])
    with Image.open(source) as tiff:
        tiff.seek(2)
        page_3_data = tiff.tag_v2[273][0]
    damaged = tmp_path / "damaged.tif"
    damaged.write_bytes(source.read_bytes()[:page_3_data + 100])
    with pytest.raises(PdfBuildError, match="page 3 of the TIFF cannot be read"):
        build(damaged, summary(3))


def test_an_unreadable_pdf_or_a_summary_of_another_document_is_a_build_error(tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\nnothing here")
    with pytest.raises(PdfBuildError, match="the PDF cannot be read"):
        build(broken, summary(1), "pdf")

    source = write_tiff(tmp_path / "in.tif", [(text_page("L", "x", (100, 50)), {"compression": "raw"})] * 2)
    with pytest.raises(PdfBuildError, match="the summary describes 3 pages but the TIFF has 2"):
        build(source, summary(3))
