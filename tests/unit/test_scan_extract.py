"""Reading documents' text with real libraries: PDF (pypdf), DOCX
(python-docx), XLSX (openpyxl), text and CSV; and refusing what cannot be
read with a reason."""
from __future__ import annotations

import io
import zipfile

import openpyxl
import pytest
from fpdf import FPDF

from chalicelib.scan.extract import MAX_OFFICE_UNPACKED_BYTES, DocumentError, extract_text
from tests.corpus.make_corpus import replace_members
from tests.support.documents import docx_bytes, pdf_bytes, zip_bytes
from tests.support.files import PNG_BYTES, binary_junk


def test_pdf_text_from_every_page():
    got = extract_text("a.pdf", pdf_bytes([], pages=[["first HOLE-1"], ["second"], ["third HOLE-2"]]))
    assert got.kind == "PDF" and got.pages == 3 and got.note == ""
    assert "HOLE-1" in got.text and "HOLE-2" in got.text


def test_a_pdf_without_text_is_read_with_a_note():
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(10, 10, 50, 50)  # a drawing, no text
    got = extract_text("scan.pdf", bytes(pdf.output()))
    assert got.text.strip() == "" and "no text layer" in got.note


def test_an_encrypted_pdf_is_refused():
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("Helvetica")
    pdf.cell(0, 10, "HOLE-1")
    with pytest.raises(DocumentError, match="password-protected PDF"):
        extract_text("locked.pdf", bytes(pdf.output()))


def test_docx_paragraphs_and_table_cells():
    data = docx_bytes(["Intro", "bore HOLE-3"], table=[["Hole", "Depth"], ["HOLE-4", "12 m"]])
    got = extract_text("report.docx", data)
    assert got.kind == "Word"
    assert "HOLE-3" in got.text and "HOLE-4" in got.text


def test_xlsx_cells():
    book = openpyxl.Workbook()
    book.active.append(["hole", "depth"])
    book.active.append(["HOLE-9", 3.5])
    buffer = io.BytesIO()
    book.save(buffer)
    got = extract_text("holes.xlsx", buffer.getvalue())
    assert got.kind == "Excel" and "HOLE-9" in got.text


@pytest.mark.parametrize("name, kind", [("notes.txt", "text"), ("list.csv", "CSV"), ("README", "text")])
def test_text_and_csv(name, kind):
    got = extract_text(name, b"hole,code\n1,HOLE-5\n")
    assert got.kind == kind and "HOLE-5" in got.text


def test_text_in_other_encodings():
    assert "HOLE-6" in extract_text("w.txt", "Bohrung HOLE-6 für".encode("utf-16")).text
    assert "für" in extract_text("c.txt", "Bohrung für HOLE-6".encode("cp1252")).text


def _bomb_docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"<w/>")
        # What the directory declares is what counts: claim the inflated size
        # of a bomb rather than spend half a gigabyte building one.
        archive.filelist[-1].file_size = MAX_OFFICE_UNPACKED_BYTES + 1
    return buffer.getvalue()


@pytest.mark.parametrize("name, data, words", [
    ("empty.txt", b"", "it is empty"),
    ("broken.pdf", b"%PDF-1.7\n garbage", "not a readable PDF"),
    ("fake.pdf", b"just some text", "its name says a PDF but it is"),
    ("fake.docx", b"just some text", "its name says a Word document"),
    ("cut.docx", docx_bytes(["x"])[:300], "damaged"),
    ("inner.zip", zip_bytes([("a.txt", b"HOLE-1")]), "a zip archive, not a document"),
    ("photo.png", PNG_BYTES, "need OCR"),
    ("junk.bin", binary_junk(), "binary data"),
    ("bomb.docx", _bomb_docx(), "zip bomb"),
], ids=lambda value: value if isinstance(value, str) and "." in value else "")
def test_unreadable_documents_say_why(name, data, words):
    with pytest.raises(DocumentError, match=words):
        extract_text(name, data)


def test_xml_bombs_in_office_documents_are_refused_and_said_so():
    entities = ['<!ENTITY a0 "aaaaaaaaaa">'] + [f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 9)]
    laughs = f'<!DOCTYPE w [{"".join(entities)}]>'
    document = (laughs + "<w:document xmlns:w='x'>&a8;</w:document>").encode()
    docx = replace_members(docx_bytes(["HOLE-1"]), {"word/document.xml": document})
    with pytest.raises(DocumentError, match=r"Word document that cannot be read safely: word/document.xml "
                                            r"declares XML entities"):
        extract_text("bomb.docx", docx)


def test_a_part_that_inflates_a_hundredfold_past_64_mib_is_a_zip_bomb():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"<w/>")
        archive.writestr("word/media/fill.bin", bytes(65 * 2**20))
    with pytest.raises(DocumentError, match=r"word/media/fill.bin would inflate from .* a zip bomb"):
        extract_text("fill.docx", buffer.getvalue())
