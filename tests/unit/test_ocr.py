"""OCR engines: real Tesseract on pages rendered with Pillow; Textract through
botocore's Stubber on a real client, with responses shaped as the
DetectDocumentText API documents them (botocore checks them against the
service model)."""
from __future__ import annotations

import io
import random

import boto3
import pytesseract
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from PIL import Image, ImageFilter

from chalicelib import ocr
from chalicelib.jobs.model import ServiceError
from chalicelib.ocr import (
    OcrEngine,
    OcrError,
    OcrFailedError,
    OcrUnavailableError,
    PageText,
    TesseractOcr,
    TextractOcr,
    engine_for,
)
from tests.support.pages import render_page

SMALL = (900, 300)


@pytest.fixture(scope="module")
def tesseract() -> TesseractOcr:
    return TesseractOcr()


@pytest.fixture(scope="module")
def clean_page() -> Image.Image:
    return render_page(["The quick brown fox jumps", "over the lazy dog 42 times"], size=SMALL)


# --- Tesseract ---------------------------------------------------------------

def test_tesseract_reads_clean_text_line_by_line(tesseract, clean_page):
    read = tesseract.read(clean_page)
    assert read == PageText(text="The quick brown fox jumps\nover the lazy dog 42 times",
                            confidence=read.confidence, engine="tesseract")
    assert read.confidence >= 90
    assert read.confidence == round(read.confidence, 1)


def test_tesseract_reads_a_ten_digit_number_exactly(tesseract):
    assert tesseract.read(render_page(["NPI 1234567893"], size=(700, 160))).text == "NPI 1234567893"


def test_paragraphs_come_in_reading_order_with_an_empty_line_between(tesseract):
    lines = ["First paragraph starts here", "and goes on a second line", "", "", "", "", "Then another one"]
    assert tesseract.read(render_page(lines, size=(900, 600))).text == (
        "First paragraph starts here\nand goes on a second line\n\nThen another one")


def test_a_blurred_noisy_page_reads_with_lower_confidence(tesseract, clean_page):
    degraded = clean_page.filter(ImageFilter.GaussianBlur(2))
    pixels, rng = degraded.load(), random.Random(7)
    for _ in range(degraded.width * degraded.height // 20):  # salt and pepper on ~5% of the page
        pixels[rng.randrange(degraded.width), rng.randrange(degraded.height)] = rng.choice((0, 255))
    clean, poor = tesseract.read(clean_page), tesseract.read(degraded)
    assert poor.text and poor.confidence < clean.confidence - 15, (clean, poor)


def test_an_empty_page_reads_as_nothing(tesseract):
    assert tesseract.read(Image.new("L", (800, 600), 255)) == PageText("", 0.0, "tesseract")


def _in_mode(page: Image.Image, mode: str) -> Image.Image:
    if mode in ("I;16", "I", "F"):  # 16-bit range: white is 65535
        return page.convert("I").point(lambda v: v * 257).convert(mode)
    if mode in ("RGBA", "LA", "PA", "La"):  # black ink on transparent film
        ink = Image.new("RGBA", page.size, (0, 0, 0, 0))
        ink.putalpha(page.point(lambda v: 255 - v))
        return {"RGBA": ink, "LA": ink.convert("LA"), "La": ink.convert("LA").convert("La"),
                "PA": ink.convert("PA")}[mode]
    if mode == "LAB":
        return page.convert("RGB").convert("LAB")
    return page.convert(mode)


@pytest.mark.parametrize("mode", ["1", "L", "RGB", "P", "CMYK", "YCbCr", "LAB", "HSV", "I;16", "I", "F",
                                  "RGBA", "LA", "La", "PA"])
def test_every_pillow_mode_a_page_may_arrive_in_is_read(tesseract, mode):
    page = render_page(["NPI 1234567893"], size=(700, 160))
    converted = _in_mode(page, mode)
    assert converted.mode == mode
    assert tesseract.read(converted).text == "NPI 1234567893"


def test_a_page_from_a_tiff_file_is_read_in_its_own_mode(tesseract):
    buffer = io.BytesIO()
    page = render_page(["NPI 1234567893"], size=(700, 160)).convert("1")
    page.save(buffer, format="TIFF", compression="group4")
    assert tesseract.read(Image.open(buffer)).text == "NPI 1234567893"


def test_without_tesseract_on_the_path_the_engine_is_unavailable(monkeypatch):
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(OcrUnavailableError, match="install tesseract-ocr"):
        TesseractOcr().read(Image.new("L", (50, 50), 255))


def test_a_language_without_data_makes_the_engine_unavailable():
    with pytest.raises(OcrUnavailableError, match="language 'zzz'.*tesseract-ocr-zzz"):
        TesseractOcr(lang="zzz").read(Image.new("L", (50, 50), 255))


def test_a_page_tesseract_cannot_take_fails_with_its_words():
    with pytest.raises(OcrFailedError, match="Image too large"):
        TesseractOcr().read(Image.new("L", (2, 40_000), 255))


def test_a_page_taking_too_long_fails():
    with pytest.raises(OcrFailedError, match="longer than 0.001 s"):
        TesseractOcr(timeout_s=0.001).read(Image.new("L", (200, 200), 255))


def test_tesseract_runs_one_thread_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    TesseractOcr()
    assert pytesseract.pytesseract.environ["OMP_THREAD_LIMIT"] == "1"
    monkeypatch.setenv("OMP_THREAD_LIMIT", "4")
    TesseractOcr()
    assert pytesseract.pytesseract.environ["OMP_THREAD_LIMIT"] == "4"


def test_a_page_segmentation_mode_tesseract_lacks_is_refused():
    with pytest.raises(ValueError, match="psm"):
        TesseractOcr(psm=14)


# --- Textract ----------------------------------------------------------------

class Sent:
    """Matches any value in Stubber's expected_params and keeps it."""

    def __init__(self):
        self.value = None

    def __eq__(self, other):
        self.value = other
        return True


def textract_client():
    return boto3.client("textract", region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def _geometry(top: float) -> dict:
    box = {"Width": 0.5, "Height": 0.02, "Left": 0.1, "Top": top}
    corners = [(0.1, top), (0.6, top), (0.6, top + 0.02), (0.1, top + 0.02)]
    return {"BoundingBox": box, "Polygon": [{"X": x, "Y": y} for x, y in corners]}


def detect_response(lines: list[list[tuple[str, float]]], line_confidence: float = 99.0) -> dict:
    """A DetectDocumentText response for one page: the PAGE block, then each
    LINE with its WORD children's ids, then the WORDs, as Textract lists them."""
    page_id, line_blocks, word_blocks = "page-1", [], []
    for n, words in enumerate(lines):
        word_ids = [f"word-{n}-{i}" for i in range(len(words))]
        line_blocks.append({
            "BlockType": "LINE", "Confidence": line_confidence, "Text": " ".join(text for text, _ in words),
            "Geometry": _geometry(0.1 + n * 0.05), "Id": f"line-{n}",
            "Relationships": [{"Type": "CHILD", "Ids": word_ids}],
        })
        word_blocks += [{"BlockType": "WORD", "Confidence": conf, "Text": text, "TextType": "PRINTED",
                         "Geometry": _geometry(0.1 + n * 0.05), "Id": word_id}
                        for (text, conf), word_id in zip(words, word_ids, strict=True)]
    children = [{"Type": "CHILD", "Ids": [block["Id"] for block in line_blocks]}] if lines else []
    page = {"BlockType": "PAGE", "Geometry": _geometry(0.0), "Id": page_id, "Relationships": children}
    return {"DocumentMetadata": {"Pages": 1}, "Blocks": [page, *line_blocks, *word_blocks],
            "DetectDocumentTextModelVersion": "1.0", "ResponseMetadata": {"HTTPStatusCode": 200}}


def _read_with(response: dict, image: Image.Image, **engine_options) -> tuple[PageText, bytes]:
    client, sent = textract_client(), Sent()
    with Stubber(client) as stub:
        stub.add_response("detect_document_text", response, {"Document": {"Bytes": sent}})
        read = TextractOcr(client, **engine_options).read(image)
        stub.assert_no_pending_responses()
    return read, sent.value


def test_textract_text_is_its_lines_in_order_and_confidence_the_words_mean(clean_page):
    response = detect_response([[("NPI:", 99.5), ("1234567893", 90.25)], [("Dr", 80.0), ("Smith", 98.0)]],
                               line_confidence=50.0)
    read, _ = _read_with(response, clean_page)
    assert read == PageText(text="NPI: 1234567893\nDr Smith", confidence=91.9, engine="textract")


def test_textract_on_a_page_without_text():
    read, _ = _read_with(detect_response([]), Image.new("L", (300, 300), 255))
    assert read == PageText("", 0.0, "textract")


def test_textract_gets_the_page_as_png(clean_page):
    _, sent = _read_with(detect_response([]), clean_page.convert("1"))
    image = Image.open(io.BytesIO(sent))
    assert (image.format, image.size, image.mode) == ("PNG", clean_page.size, "L")


def test_a_page_too_big_as_png_goes_as_jpeg_at_full_size(clean_page):
    grain = Image.effect_noise(clean_page.size, 40).convert("L")  # paper texture: PNG compresses it badly
    rgb = Image.blend(clean_page, grain, 0.3).convert("RGB")
    png, jpeg = io.BytesIO(), io.BytesIO()
    rgb.save(png, format="PNG")
    rgb.save(jpeg, format="JPEG", quality=90)
    limit = (len(png.getvalue()) + len(jpeg.getvalue())) // 2
    assert len(jpeg.getvalue()) < limit < len(png.getvalue())
    _, sent = _read_with(detect_response([]), rgb, max_bytes=limit)
    image = Image.open(io.BytesIO(sent))
    assert (image.format, image.size) == ("JPEG", rgb.size)
    assert len(sent) <= limit


def test_a_page_too_big_even_as_jpeg_is_scaled_down_to_fit():
    noise = Image.frombytes("L", (600, 800), random.Random(1).randbytes(600 * 800))
    _, sent = _read_with(detect_response([]), noise, max_bytes=40_000)
    image = Image.open(io.BytesIO(sent))
    assert image.format == "JPEG" and len(sent) <= 40_000
    assert image.width < 600 and image.width / image.height == pytest.approx(600 / 800, abs=0.01)


def test_a_page_wider_than_textract_takes_is_scaled_down():
    _, sent = _read_with(detect_response([]), Image.new("L", (12_000, 60), 255))
    assert Image.open(io.BytesIO(sent)).size == (10_000, 50)


@pytest.mark.parametrize(("code", "status", "raised"), [
    ("ProvisionedThroughputExceededException", 400, ServiceError),
    ("ThrottlingException", 500, ServiceError),
    ("InternalServerError", 500, ServiceError),
    ("LimitExceededException", 400, ServiceError),
    ("ServiceUnavailable", 503, ServiceError),
    ("InvalidParameterException", 400, OcrFailedError),
    ("UnsupportedDocumentException", 400, OcrFailedError),
    ("BadDocumentException", 400, OcrFailedError),
    ("DocumentTooLargeException", 400, OcrFailedError),
    ("AccessDeniedException", 400, OcrUnavailableError),
])
def test_textract_errors_become_retryable_or_page_errors(code, status, raised):
    client = textract_client()
    with Stubber(client) as stub:
        stub.add_client_error("detect_document_text", service_error_code=code, service_message="said so",
                              http_status_code=status)
        with pytest.raises(raised, match=f"{code}: said so"):
            TextractOcr(client).read(Image.new("L", (100, 100), 255))


def test_textract_out_of_reach_is_retryable():
    client = boto3.client("textract", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2))
    with pytest.raises(ServiceError, match="could not be reached"):
        TextractOcr(client).read(Image.new("L", (100, 100), 255))


# --- choosing an engine --------------------------------------------------------

def test_engine_for_names_each_engine():
    client = textract_client()
    assert isinstance(engine_for("tesseract"), TesseractOcr)
    textract = engine_for("textract", textract_client_factory=lambda: client)
    assert isinstance(textract, TextractOcr) and textract._client is client
    for engine in (engine_for("tesseract"), textract):
        assert isinstance(engine, OcrEngine)


def test_textract_client_comes_from_the_lazy_aws_getters_by_default(monkeypatch):
    built = []
    monkeypatch.setattr("chalicelib.aws.client", lambda service: built.append(service) or object())
    engine_for("textract")
    assert built == ["textract"]


def test_an_unknown_engine_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="'abbyy'.*tesseract, textract"):
        engine_for("abbyy")


def test_ocr_errors_share_one_base():
    assert issubclass(OcrUnavailableError, OcrError) and issubclass(OcrFailedError, OcrError)
    assert set(ocr.__all__) >= {"OcrEngine", "PageText", "engine_for", "OcrError"}
