"""The page fixtures are what they claim: each TIFF compression really is
that compression on every page, every kind of document holds its pages, a
rendered NPI is read back exactly by Tesseract from each, and an NPI
document's expectations match what the detector finds."""
from __future__ import annotations

import io
import random

import pypdf
import pypdfium2
import pytest
from PIL import Image

from chalicelib.detect import NpiDetector, is_valid_npi
from chalicelib.detect.npi import BARE_SCORE, NEAR_KEYWORD_SCORE
from chalicelib.ocr import TesseractOcr
from tests.support.pages import (
    COMPRESSIONS,
    DPI,
    PAGE_SIZE,
    invalid_npi,
    npi_document,
    npi_lines,
    pdf_scanned_bytes,
    pdf_text_bytes,
    render_page,
    tiff_bytes,
    tiff_file,
    valid_npi,
)

NPI = "1234567893"
SMALL = (700, 260)


@pytest.fixture(scope="module")
def tesseract() -> TesseractOcr:
    return TesseractOcr()


def small_pages(count: int) -> list[Image.Image]:
    return [render_page([f"Page {n}", f"NPI {NPI}"], size=SMALL) for n in range(1, count + 1)]


def frames(data: bytes):
    image = Image.open(io.BytesIO(data))
    for index in range(image.n_frames):
        image.seek(index)
        yield image


@pytest.mark.parametrize("compression", list(COMPRESSIONS))
def test_each_tiff_compression_is_what_it_claims_on_every_page(compression, tesseract):
    data = tiff_bytes(small_pages(3), compression)
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.n_frames) == ("TIFF", 3)
    for page in frames(data):
        assert page.info["compression"] == compression
        assert page.tag_v2[259] == COMPRESSIONS[compression]
        assert page.mode == ("1" if compression in ("group3", "group4") else "L")
        assert page.info["dpi"] == (DPI, DPI) and page.size == SMALL
    image.seek(1)
    assert tesseract.read(image).text == f"Page 2\nNPI {NPI}"


def test_a_jpeg_tiff_keeps_colour_and_greys_a_bilevel_page():
    colour = render_page(["x"], size=SMALL).convert("RGB")
    modes = [page.mode for page in frames(tiff_bytes([colour, colour.convert("1")], "jpeg"))]
    assert modes == ["RGB", "L"]


def test_tiff_file_streams_pages_from_a_generator(tmp_path):
    pages = (render_page([f"Page {n}"], size=(400, 200)) for n in range(1, 6))
    path = tiff_file(tmp_path / "big.tif", pages, "tiff_lzw")
    with Image.open(path) as image:
        assert image.n_frames == 5 and image.info["compression"] == "tiff_lzw"


def test_tiff_fixtures_refuse_what_they_cannot_make():
    with pytest.raises(ValueError, match="unknown TIFF compression 'lzw'"):
        tiff_bytes(small_pages(1), "lzw")
    with pytest.raises(ValueError, match="at least one page"):
        tiff_bytes([], "raw")


def test_render_page_is_a_white_letter_page_at_200_dpi():
    page = render_page(["Hello"])
    assert (page.mode, page.size, page.info["dpi"]) == ("L", PAGE_SIZE, (200, 200))
    assert page.getpixel((5, 5)) == 255 and page.getextrema() == (0, 255)
    with pytest.raises(ValueError, match="line 2 .* does not fit"):
        render_page(["fits", "x" * 200], size=SMALL)
    with pytest.raises(ValueError, match="line 3"):
        render_page(["a"] * 3, size=SMALL)


def test_npi_generators():
    rng = random.Random(5)
    for _ in range(500):
        good, bad = valid_npi(rng), invalid_npi(rng)
        assert is_valid_npi(good) and not is_valid_npi(bad)
        assert len(bad) == 10 and bad.isdigit() and good[0] in "12" and bad[0] in "12"


def test_a_scanned_pdf_has_only_images_and_they_read_back(tesseract):
    data = pdf_scanned_bytes([render_page(["x"]), *small_pages(2)])
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 3
    assert all(page.extract_text() == "" for page in reader.pages)
    assert all(len(page.images) == 1 for page in reader.pages)
    assert [float(v) for v in reader.pages[0].mediabox[2:]] == [612.0, 792.0]  # Letter, in points
    rendered = pypdfium2.PdfDocument(data)[2].render(scale=DPI / 72).to_pil()
    assert tesseract.read(rendered).text == f"Page 2\nNPI {NPI}"


def test_a_text_pdf_has_its_lines_in_a_text_layer():
    reader = pypdf.PdfReader(io.BytesIO(pdf_text_bytes([["Claim one", f"NPI {NPI}"], ["Page two"]])))
    assert [page.extract_text().splitlines() for page in reader.pages] == [["Claim one", f"NPI {NPI}"],
                                                                           ["Page two"]]


def _found(text: str, page: int) -> list[tuple[str, float]]:
    return [(finding.value, finding.score) for finding in NpiDetector().find(text, page)]


def _expected_findings(expected, page: int) -> list[tuple[str, float]]:
    npis = expected.npis.get(page, [])
    scores = {npi: NEAR_KEYWORD_SCORE if (page, npi) in expected.labelled else BARE_SCORE for npi in npis}
    # The detector lists bare NPIs first: they stand above every "NPI:" line.
    return sorted(scores.items(), key=lambda item: item[1])


@pytest.mark.parametrize("seed", range(5))
def test_npi_document_expectations_match_the_detector_on_its_text_layer(seed):
    rng = random.Random(seed)
    npi_pages = {page: [valid_npi(rng) for _ in range(rng.randint(1, 3))]
                 for page in rng.sample(range(1, 13), 5)}
    data, expected = npi_document(12, npi_pages, rng, kind="pdf_text")
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert len(reader.pages) == expected.page_count == 12
    assert expected.npi_pages == sorted(npi_pages)
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text()
        assert _found(text, number) == _expected_findings(expected, number)
        assert all(decoy in text for decoy in expected.decoys[number])
        assert not any(is_valid_npi(decoy) for decoy in expected.decoys[number])
    assert {label for label, _ in expected.labelled} <= set(npi_pages)
    assert 0 < len(expected.labelled) < sum(map(len, npi_pages.values()))  # some of each, for these seeds


def test_an_ocrd_npi_document_finds_exactly_the_expected_npis(tesseract):
    rng = random.Random(11)
    npi_pages = {1: [valid_npi(rng), valid_npi(rng)], 3: [valid_npi(rng)]}
    data, expected = npi_document(3, npi_pages, rng, compression="group4", size=(1000, 1000))
    for number, page in enumerate(frames(data), start=1):
        read = tesseract.read(page)
        assert [line for line in read.text.splitlines() if line] == expected.lines[number - 1]
        assert _found(read.text, number) == _expected_findings(expected, number)


def test_npi_document_kinds_and_refusals():
    rng = random.Random(2)
    data, expected = npi_document(2, {2: [NPI]}, rng, kind="pdf_scanned", size=(1000, 1000))
    assert len(pypdf.PdfReader(io.BytesIO(data)).pages) == 2 and expected.npis == {2: [NPI]}
    with pytest.raises(ValueError, match="page 3 is outside 1-2"):
        npi_lines(2, {3: [NPI]}, rng)
    with pytest.raises(ValueError, match="not valid NPIs"):
        npi_lines(2, {1: ["1234567890"]}, rng)
    with pytest.raises(ValueError, match="unknown document kind"):
        npi_document(1, {}, rng, kind="docx")
