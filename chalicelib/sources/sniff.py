"""What a file really is, by its first bytes rather than its name, and which
text encoding it uses."""
from __future__ import annotations

import codecs
import io
import zipfile

from ..jobs.model import InputError

TABLE_KINDS = ("csv", "xlsx")

_NAMES = {
    "xls": "a legacy Excel 97-2003 (.xls) or password-protected Excel workbook",
    "pdf": "a PDF document",
    "tiff": "a TIFF image",
    "zip": "a zip archive",
    "gzip": "a gzip archive",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "binary": "binary data",
}


def sniff_kind(head: bytes) -> str:
    """The file's kind from its first bytes (at least 8 KiB when the file is
    that long): csv (any text), xlsx, xls, pdf, tiff, zip, gzip, png, jpeg, binary."""
    if head.startswith(b"PK\x03\x04"):
        return "xlsx" if _looks_like_xlsx(head) else "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "xls"
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


def _looks_like_xlsx(head: bytes) -> bool:
    # The local file headers near the start name the package's parts; a full
    # zip directory is not needed to tell a workbook from another archive.
    return b"xl/" in head or b"[Content_Types].xml" in head and b"word/" not in head


def _is_text(head: bytes) -> bool:
    if not head:
        return True
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _utf16_without_bom(head):
        return True
    if b"\x00" in head:
        return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return controls <= len(head) // 100


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


def check_xlsx_archive(path: str) -> None:
    """Raise InputError unless the file is a readable xlsx package."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"the Excel file is damaged or truncated ({exc})") from None
    if "xl/workbook.xml" not in names:
        raise InputError("the file is a zip archive but not an Excel workbook (no xl/workbook.xml)")


def open_text(data: bytes, encoding: str) -> io.StringIO:
    return io.StringIO(data.decode(encoding))
