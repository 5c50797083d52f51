"""What a file really is, by its first bytes rather than its name, and which
text encoding it uses."""
from __future__ import annotations

import codecs
import io

TABLE_KINDS = ("csv", "xlsx")

_NAMES = {
    "csv": "text",
    "xlsx": "an Excel workbook",
    "xls": "a legacy Excel 97-2003 (.xls) or password-protected Excel workbook",
    "encrypted_office": "an Excel or Office file locked with a password (remove the password first)",
    "doc": "a legacy Word 97-2003 (.doc) document",
    "docx": "a Word document",
    "pdf": "a PDF document",
    "tiff": "a TIFF image",
    "zip": "a zip archive",
    "gzip": "a gzip archive",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "binary": "binary data",
}
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Stream names in an OLE2 compound file's directory (UTF-16LE): a password-
# protected .xlsx or .docx is one holding the encrypted package.
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_WORD_STREAM = "WordDocument".encode("utf-16-le")


def sniff_kind(head: bytes) -> str:
    """The file's kind from its first bytes (at least 8 KiB when the file is
    that long): csv (any text), xlsx, docx, xls, doc, encrypted_office, pdf,
    tiff, zip, gzip, png, jpeg, binary."""
    if head.startswith(b"PK\x03\x04"):
        return _package_kind(head)
    if head.startswith(b"PK\x05\x06"):  # an empty zip is its directory's end alone
        return "zip"
    if head.startswith(_OLE2):
        return _ole2_kind(head)
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\x89PNG"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if _is_text(head):
        return "csv"
    return "binary"


def describe_kind(kind: str) -> str:
    return _NAMES.get(kind, kind)


_PACKAGE_PARTS = (b"[Content_Types].xml", b"_rels/", b"docProps/", b"word/", b"customXml/")


def _package_kind(head: bytes) -> str:
    # The local file headers near the start name the package's parts; a full
    # zip directory is not needed to tell a workbook from another archive.
    if b"xl/" in head:
        return "xlsx"
    if b"[Content_Types].xml" in head:
        if b"word/" not in head:
            return "xlsx"
        # A Word file's own first part, not a Word file stored first in a zip of documents.
        first = head[30:30 + int.from_bytes(head[26:28], "little")]
        return "docx" if b"word/document.xml" in head and first.startswith(_PACKAGE_PARTS) else "zip"
    return "zip"


def _ole2_kind(head: bytes) -> str:
    # The directory naming the streams is usually within the first sectors;
    # when it is not, "xls" names both a legacy and a locked workbook.
    if _ENCRYPTED_PACKAGE in head:
        return "encrypted_office"
    if _WORD_STREAM in head:
        return "doc"
    return "xls"


def _is_text(head: bytes) -> bool:
    if not head:
        return True
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _utf16_without_bom(head):
        return True
    # A writer that crashed may leave a run of NUL bytes at the end of a text
    # file; a stray control byte here and there (NUL too) is the row's
    # problem, named when the row is read. Binary data has them everywhere.
    sample = head.rstrip(b"\x00")
    if not sample:
        return False
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return controls <= len(sample) // 100


def _utf16_without_bom(head: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when every other byte is NUL, as in mostly
    ASCII text written as UTF-16 without a byte order mark."""
    sample = head[:4096]
    if len(sample) < 4:
        return None
    even_nul = sample[0::2].count(0) / len(sample[0::2])
    odd_nul = sample[1::2].count(0) / len(sample[1::2])
    if odd_nul > 0.6 and even_nul < 0.1:
        return "utf-16-le"
    if even_nul > 0.6 and odd_nul < 0.1:
        return "utf-16-be"
    return None


# Callers sniff the first 64 KiB; a shorter head is the whole file.
SAMPLE_BYTES = 64 * 1024


def detect_encoding(head: bytes, complete: bool | None = None) -> str:
    """One of utf-8-sig, utf-16 (with a BOM), utf-16-le/-be, utf-8, cp1252 or
    latin-1. The first three are not ASCII-compatible and must be transcoded
    before byte-range splitting.

    `complete` says whether `head` is the whole file; by default a head
    shorter than SAMPLE_BYTES is taken to be. Only a sample that stops short
    of the file's end may end inside a UTF-8 character."""
    if complete is None:
        complete = len(head) < SAMPLE_BYTES
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    bare = _utf16_without_bom(head)
    if bare:
        return bare
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut off by the end of the sample is still UTF-8.
        if (not complete and exc.start >= len(head) - 3
                and exc.reason == "unexpected end of data"):
            return "utf-8"
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def is_ascii_compatible(encoding: str) -> bool:
    return not encoding.startswith("utf-16")


def open_text(data: bytes, encoding: str) -> io.StringIO:
    return io.StringIO(data.decode(encoding))
