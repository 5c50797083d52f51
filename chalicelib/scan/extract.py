"""The text of one document, whatever it is: PDF (its text layer, read by
pypdf), Word .docx (python-docx), Excel .xlsx (openpyxl), plain text and CSV.

What a document is comes from its bytes, not its name. Anything that cannot
be read (damaged, encrypted, an image without a text layer of its own, an
archive) raises DocumentError with a reason a person can act on; the caller
makes that the document's own error and goes on with the next one.
"""
from __future__ import annotations

import io
import logging
import posixpath
import zipfile
from dataclasses import dataclass

from ..sources.packages import is_worksheet, package_problem, xml_refusal
from ..sources.sniff import describe_kind, detect_encoding, sniff_kind

#: pages read from one PDF; past it the document is scanned in part, with a note
MAX_PDF_PAGES = 2_000
#: cells read from one workbook
MAX_XLSX_CELLS = 2_000_000
#: what an Office file may inflate to: a 50 MB upload that unpacks to
#: gigabytes is a zip bomb, not a document
MAX_OFFICE_UNPACKED_BYTES = 512 * 1024 * 1024
_SNIFF_BYTES = 64 * 1024
# Extensions whose bytes must be what they say: (what, sniffed kinds that fit).
_OFFICE_KINDS = ("zip", "xlsx", "docx")
_CLAIMED = {".pdf": ("a PDF", ("pdf",)), ".docx": ("a Word document", _OFFICE_KINDS),
            ".xlsx": ("an Excel workbook", _OFFICE_KINDS)}

# pypdf warns about every small defect it repairs; its exceptions say what matters.
logging.getLogger("pypdf").setLevel(logging.ERROR)


class DocumentError(Exception):
    """A document that cannot be read; the message says why."""


@dataclass(frozen=True)
class ExtractedText:
    text: str
    #: what the document is, for the report: PDF, Word, Excel, text, CSV
    kind: str
    pages: int | None = None
    #: anything the reader should know (no text layer, scanned in part)
    note: str = ""


def extract_text(name: str, data: bytes) -> ExtractedText:
    if not data:
        raise DocumentError("it is empty (0 bytes)")
    kind = sniff_kind(data[:_SNIFF_BYTES])
    claimed = _CLAIMED.get(posixpath.splitext(name)[1].casefold())
    if claimed and kind not in claimed[1]:
        # A .pdf that is really text is a broken export, not a text file.
        raise DocumentError(f"its name says {claimed[0]} but it is {describe_kind(kind)}")
    if kind == "pdf":
        return _pdf(data)
    if kind in _OFFICE_KINDS:
        return _office(data)
    if kind == "csv":  # sniff_kind's word for any text
        return _text(name, data)
    if kind in ("png", "jpeg", "tiff"):
        raise DocumentError(f"it is {describe_kind(kind)} with no text layer; scanned pages need "
                            "OCR (the pages processor)")
    raise DocumentError(f"it is {describe_kind(kind)}, not a PDF, Word, Excel or text document")


def _pdf(data: bytes) -> ExtractedText:
    import pypdf  # imported on first use: only scan workers pay for it

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("it is a password-protected PDF")
        count = len(reader.pages)
        if count == 0:
            raise DocumentError("it is a PDF with no pages")
        texts = [page.extract_text() or "" for page in reader.pages[:MAX_PDF_PAGES]]
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds for damaged files
        raise DocumentError(f"it is not a readable PDF ({_reason(exc)})") from None
    text = "\n".join(texts)
    notes = []
    if count > MAX_PDF_PAGES:
        notes.append(f"only the first {MAX_PDF_PAGES:,} of {count:,} pages were scanned")
    if not text.strip():
        notes.append("no text layer (a scanned image?): OCR it with the pages processor")
    return ExtractedText(text, "PDF", count, "; ".join(notes))


def _office(data: bytes) -> ExtractedText:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "word/document.xml" in names:
                reader, kind, streamed = _docx_text, "Word", _never
            elif "xl/workbook.xml" in names:
                reader, kind, streamed = _xlsx_text, "Excel", is_worksheet
            else:
                raise DocumentError("it is a zip archive, not a document: put its documents in the job's zip")
            unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > MAX_OFFICE_UNPACKED_BYTES:
                raise DocumentError(f"it would unpack to {unpacked:,} bytes (over "
                                    f"{MAX_OFFICE_UNPACKED_BYTES // 2**20} MB): a zip bomb, not a document")
            problem = package_problem(archive, streamed=streamed)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DocumentError(f"it is a damaged zip or Office file ({_reason(exc)})") from None
    if problem:
        raise DocumentError(f"it is a {kind} document that cannot be read safely: {problem}")
    try:
        return ExtractedText(reader(data), kind)
    except Exception as exc:  # noqa: BLE001 - the readers raise many kinds for damaged files
        refused = xml_refusal(exc)
        if refused:
            raise DocumentError(f"it is a {kind} document that cannot be read safely: {refused}") from None
        raise DocumentError(f"it is a damaged {kind} document ({_first_line(exc)})") from None


def _never(name: str) -> bool:
    return False


def _docx_text(data: bytes) -> str:
    import docx  # python-docx

    document = docx.Document(io.BytesIO(data))
    parts: list[str] = []
    for section in document.sections:
        for part in (section.header, section.footer):
            if not part.is_linked_to_previous:  # reading an absent one would add it
                parts += [p.text for p in part.paragraphs]
    _block_text(document, parts)
    return "\n".join(parts)


def _block_text(container, parts: list[str]) -> None:
    """Paragraphs and table cells, nested tables included, in document order."""
    for block in container.iter_inner_content():
        if hasattr(block, "rows"):
            for row in block.rows:
                for cell in row.cells:
                    _block_text(cell, parts)
        else:
            parts.append(block.text)


def _xlsx_text(data: bytes) -> str:
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        parts, cells = [], 0
        for sheet in book.worksheets:
            for row in sheet.iter_rows(values_only=True):
                parts.append("\t".join("" if v is None else str(v) for v in row))
                cells += len(row)
                if cells > MAX_XLSX_CELLS:
                    return "\n".join(parts)
        return "\n".join(parts)
    finally:
        book.close()


def _text(name: str, data: bytes) -> ExtractedText:
    encoding = detect_encoding(data[:_SNIFF_BYTES], complete=len(data) <= _SNIFF_BYTES)
    text = data.decode("utf-8-sig" if encoding == "utf-8" else encoding, errors="replace")
    kind = "CSV" if posixpath.splitext(name)[1].casefold() in (".csv", ".tsv") else "text"
    return ExtractedText(text, kind)


def _reason(exc: Exception) -> str:
    return str(exc).strip() or type(exc).__name__


def _first_line(exc: Exception) -> str:
    return _reason(exc).splitlines()[0]
