"""Office packages (.xlsx, .docx) checked before any parser opens them.

A package is a zip of XML parts. Two attacks hide in one:

- a zip bomb: a part of a few hundred KB that inflates to gigabytes. The
  zip's directory declares every part's size, and zipfile never inflates a
  part past its declared size (it stops there and the CRC check fails), so
  the declared sizes bound what a reader can be made to inflate. Sheets are
  streamed and cost time; every other part is read whole and costs memory.
- an XML bomb: a DTD declaring entities (billion laughs, or an external
  entity that reads a local file). Office files never carry a DTD. openpyxl
  parses with defusedxml and lxml without entity resolution, which refuse
  them; checking each part's prolog first names the part in the message.
"""
from __future__ import annotations

import zipfile
from collections.abc import Callable

from ..jobs.model import InputError

MiB = 1024 * 1024
#: all parts together; past it a workbook is too large to read in one go
MAX_UNPACKED_BYTES = 2 * 1024 * MiB
#: a part read whole into memory (everything but a workbook's sheets)
MAX_WHOLE_PART_BYTES = 128 * MiB
#: a part inflating past BOMB_GRACE_BYTES at more than BOMB_RATIO times its
#: packed size is a zip bomb: XML compresses 5 to 20 times (Apache POI
#: refuses past 100 times; its grace size is smaller)
BOMB_RATIO = 100
BOMB_GRACE_BYTES = 64 * MiB
#: parts in one package; Excel's own workbooks have tens
MAX_PARTS = 10_000
#: how much of each XML part is searched for a DTD (it must precede the root element)
PROLOG_BYTES = 8 * 1024
_DTD_MARKS = (b"<!DOCTYPE", b"<!ENTITY")
_XML_PARTS = (".xml", ".rels", ".vml")


def package_problem(archive: zipfile.ZipFile, streamed: Callable[[str], bool] = lambda name: False,
                    max_total: int | None = None) -> str | None:
    """Why the package must not be opened, or None. `streamed(name)` tells
    the parts a reader streams rather than holds whole; `max_total` bounds
    all parts together (MAX_UNPACKED_BYTES by default)."""
    max_total = max_total or MAX_UNPACKED_BYTES
    infos = archive.infolist()
    if len(infos) > MAX_PARTS:
        return f"it holds {len(infos):,} parts (at most {MAX_PARTS:,}): not an Office file Sluice reads"
    for info in infos:
        size, packed = info.file_size, max(info.compress_size, 1)
        if size > MAX_WHOLE_PART_BYTES and not streamed(info.filename):
            what = ("its shared strings" if info.filename.endswith("sharedStrings.xml")
                    else "its part")
            return (f"{what} ({info.filename}) would unpack to {size:,} bytes, more than the "
                    f"{MAX_WHOLE_PART_BYTES // MiB} MiB Sluice holds in memory")
        if size > BOMB_GRACE_BYTES and size > BOMB_RATIO * packed:
            return (f"{info.filename} would inflate from {info.compress_size:,} to {size:,} bytes "
                    f"({size // packed:,} times): a zip bomb, not a document")
    total = sum(info.file_size for info in infos)
    if total > max_total:
        return (f"it would unpack to {total:,} bytes, over the {max_total // MiB:,} MiB Sluice reads "
                "from one Office file")
    for info in infos:
        if info.filename.endswith(_XML_PARTS) and _declares_entities(archive, info):
            return (f"{info.filename} declares XML entities (a <!DOCTYPE>), which Office files never "
                    "do: refused as an XML bomb or an attempt to read local files")
    return None


def _declares_entities(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    try:
        with archive.open(info) as part:
            prolog = part.read(PROLOG_BYTES)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError):
        return False  # unreadable parts are the parser's to report
    return any(mark in prolog for mark in _DTD_MARKS)


def is_worksheet(name: str) -> bool:
    return name.startswith("xl/worksheets/") and name.endswith(".xml")


def check_xlsx_archive(path: str) -> None:
    """Raise InputError unless the file is an xlsx package safe to open."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            problem = package_problem(archive, streamed=is_worksheet)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"the Excel file is damaged or truncated ({exc})") from None
    if "xl/workbook.xml" not in names:
        raise InputError("the file is a zip archive but not an Excel workbook (no xl/workbook.xml)")
    if problem:
        raise InputError(f"the Excel file cannot be read safely: {problem}")


def xml_refusal(exc: BaseException) -> str | None:
    """What an XML parser's refusal inside `exc` (or its causes) means, when
    it refused entities: defusedxml's *Forbidden errors, lxml's limits."""
    seen = 0
    while exc is not None and seen < 10:
        text = str(exc)
        if type(exc).__module__.startswith("defusedxml") or "amplification" in text \
                or "external entity" in text:
            return (f"its XML declares entities ({type(exc).__name__}: {text[:200]}), which Office files "
                    "never do: refused as an XML bomb or an attempt to read local files")
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None
