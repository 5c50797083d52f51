"""What a file is (by its first bytes, never its name) and which encoding its
text uses."""
from __future__ import annotations

import codecs
import io
import zipfile

import pytest

from chalicelib.jobs.model import InputError
from chalicelib.sources.packages import check_xlsx_archive
from chalicelib.sources.sniff import (
    TABLE_KINDS,
    describe_kind,
    detect_encoding,
    is_ascii_compatible,
    sniff_kind,
)
from tests.support.documents import docx_bytes, zip_bytes
from tests.support.files import (
    GZIP_BYTES,
    JPEG_BYTES,
    PDF_BYTES,
    PNG_BYTES,
    TIFF_BE_BYTES,
    TIFF_LE_BYTES,
    XLS_OLE_BYTES,
    binary_junk,
    csv_bytes,
    plain_zip,
    xlsx_bytes,
)

SAMPLE = 64 * 1024


def _stored_zip_of(document: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("reports/q3.docx", document)
        archive.writestr("notes.txt", b"HOLE-1")
    return buffer.getvalue()
TEXT = "name,city,amount\nZoë,Köln,3.50\nJosé,São Paulo,4\n“Ann”,Łódź,€5\n"


# -- kinds ------------------------------------------------------------------

def test_xlsx_made_by_openpyxl():
    book = xlsx_bytes([["a", "b"], [1, 2]])
    assert sniff_kind(book) == "xlsx"
    assert sniff_kind(book[:SAMPLE]) == "xlsx"


def test_big_xlsx_is_known_from_its_first_64_kib():
    book = xlsx_bytes([[f"name {i}", i, i * 0.5, "x" * 40] for i in range(6000)])
    assert len(book) > SAMPLE
    assert sniff_kind(book[:SAMPLE]) == "xlsx"


@pytest.mark.parametrize("data, kind", [
    (plain_zip(), "zip"),
    (plain_zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w/>"}), "docx"),
    (plain_zip({"[Content_Types].xml": b"<Types/>", "word/notes.txt": b"x"}), "zip"),
    (plain_zip({"word/document.xml": b"<w/>"}), "zip"),  # a folder named word/ in a plain zip
    (_stored_zip_of(docx_bytes(["x"])), "zip"),  # a zip of documents whose first is a Word file, stored
    (zip_bytes([]), "zip"),  # nothing but the directory's end: PK\x05\x06
    (XLS_OLE_BYTES, "xls"),
    (XLS_OLE_BYTES + "EncryptedPackage".encode("utf-16-le"), "encrypted_office"),
    (XLS_OLE_BYTES + "WordDocument".encode("utf-16-le"), "doc"),
    (PDF_BYTES, "pdf"),
    (TIFF_LE_BYTES, "tiff"),
    (TIFF_BE_BYTES, "tiff"),
    (GZIP_BYTES, "gzip"),
    (PNG_BYTES, "png"),
    (JPEG_BYTES, "jpeg"),
    (binary_junk(), "binary"),
    (b"a,b\n1,2\n" + bytes([0]) + b"3,4\n", "binary"),
    (TEXT.encode("utf-8"), "csv"),
    (TEXT.encode("cp1252", errors="replace"), "csv"),
    (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "csv"),
    (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "csv"),
    (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "csv"),
    (TEXT.encode("utf-16-le"), "csv"),
    (b"a\tb\r\n1\t2\r\n", "csv"),
    (b"", "csv"),
], ids=lambda value: value if isinstance(value, str) else "bytes")  # zips carry timestamps: ids must not
def test_kinds(data, kind):
    assert sniff_kind(data) == kind


def test_text_with_many_control_characters_is_binary():
    assert sniff_kind(b"a,b\n" + b"\x01\x02\x03\x04" * 50) == "binary"


def test_a_stray_nul_in_text_leaves_it_text_for_the_row_to_be_named():
    rows = b"".join(b"%d,name %d\n" % (i, i) for i in range(200))
    assert sniff_kind(b"id,name\n" + rows[:500] + b"\x00" + rows[500:]) == "csv"


def test_text_padded_with_nul_bytes_is_text_and_nul_bytes_alone_are_not():
    rows = b"id,score\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(50))
    assert sniff_kind(rows + bytes(5000)) == "csv"  # a crashed writer's padding
    assert sniff_kind(bytes(5000)) == "binary"


def test_table_kinds_and_descriptions():
    assert TABLE_KINDS == ("csv", "xlsx")
    assert "PDF" in describe_kind("pdf")
    assert ".xls" in describe_kind("xls")
    assert describe_kind("binary") == "binary data"
    assert describe_kind("csv") == "text"
    assert "password" in describe_kind("encrypted_office")
    assert describe_kind("docx") == "a Word document"


# -- encodings ----------------------------------------------------------------

@pytest.mark.parametrize("data, encoding", [
    (TEXT.encode("utf-8"), "utf-8"),
    (b"plain,ascii\n1,2\n", "utf-8"),
    (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
    (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16"),
    (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16"),
    (TEXT.encode("utf-16-le"), "utf-16-le"),
    (TEXT.encode("utf-16-be"), "utf-16-be"),
    ("price,note\n€5,“smart” quotes — dash\n".encode("cp1252"), "cp1252"),
])
def test_detect_encoding(data, encoding):
    assert detect_encoding(data) == encoding


@pytest.mark.parametrize("text", [
    "name,city\nZoë,Zürich\nÆrø,façade ½\n",
    "name\nJosé",            # the only non-ASCII byte is the last one
    "a,b\ncafé,crème brûlée\n",
])
def test_latin1_text_decodes_to_what_was_written(text):
    data = text.encode("latin-1")
    encoding = detect_encoding(data)
    assert encoding in ("cp1252", "latin-1")
    assert data.decode(encoding) == text


def test_latin1_with_a_byte_cp1252_lacks():
    data = b"a,b\nx,y\n\x8d\xe9\n"
    assert detect_encoding(data) == "latin-1"
    assert data.decode("latin-1").endswith("\x8d\xe9\n")


def test_utf16_with_bom_decodes():
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        data = bom + TEXT.encode(codec)
        assert data.decode(detect_encoding(data)) == TEXT


def test_a_sample_cut_inside_a_utf8_character_is_still_utf8():
    data = ("x" * (SAMPLE - 1) + "é\n").encode("utf-8")
    head = data[:SAMPLE]  # ends with the first byte of "é"
    assert head[-1] == 0xC3
    assert detect_encoding(head) == "utf-8"
    assert detect_encoding(head, complete=False) == "utf-8"
    # The same bytes as a whole file are not UTF-8.
    assert detect_encoding(head, complete=True) == "cp1252"


def test_utf8_file_with_a_broken_byte_inside_the_sample_is_not_utf8():
    data = TEXT.encode("utf-8") + b"bad \xff byte\n"
    assert detect_encoding(data) in ("cp1252", "latin-1")


def test_ascii_compatibility():
    for enc in ("utf-8", "utf-8-sig", "cp1252", "latin-1"):
        assert is_ascii_compatible(enc)
    for enc in ("utf-16", "utf-16-le", "utf-16-be"):
        assert not is_ascii_compatible(enc)


def test_detected_encoding_and_kind_together_on_csv_bytes():
    rows = [["name", "note"], ["Zoë", "a, “b”"], ["Ann", "€"]]
    for encoding, bom in (("utf-8", False), ("utf-8", True), ("utf-16-le", True),
                          ("utf-16-be", True), ("utf-16-le", False), ("cp1252", False)):
        data = csv_bytes(rows, encoding=encoding, bom=bom)
        assert sniff_kind(data) == "csv", encoding
        text = data.decode(detect_encoding(data))
        assert text.lstrip("\ufeff") == "name,note\nZoë,\"a, “b”\"\nAnn,€\n", (encoding, bom)


# -- xlsx archives --------------------------------------------------------------

def test_check_xlsx_archive(tmp_path):
    good = tmp_path / "good.xlsx"
    good.write_bytes(xlsx_bytes([["a"], [1]]))
    check_xlsx_archive(str(good))

    truncated = tmp_path / "cut.xlsx"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match="damaged or truncated"):
        check_xlsx_archive(str(truncated))

    other = tmp_path / "other.xlsx"
    other.write_bytes(plain_zip())
    with pytest.raises(InputError, match="not an Excel workbook"):
        check_xlsx_archive(str(other))
