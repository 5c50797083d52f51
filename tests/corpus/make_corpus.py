"""The bad-input corpus: hostile and broken files for every processor, each
with the outcome Sluice owes it, made by code rather than kept as binaries.

    python -m tests.corpus.make_corpus OUT_DIR      # every case, as files
    python -m tests.corpus.make_corpus --table      # the table of tests/corpus/README.md

writes each case's file as OUT_DIR/<case>/<filename> and, in OUT_DIR/cases.json,
what to run it with (processor, filename, options, pipeline settings) and what
must come of it: a final status, words its error or its row errors must hold
(the problem and, where known, the row, page or member), values its result
must have, and words that must appear nowhere (a file the input tried to leak).
`write_corpus(out_dir)` does the same from Python and returns the cases.

Bombs are small on disk and huge inflated, so they are made where they are
used (a test's tmp_path), in one streaming pass each. GOOD holds one sound
input per processor: a job run beside every bad one, which must not notice.
"""
from __future__ import annotations

import io
import json
import random
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.support.documents import docx_bytes, pdf_bytes, zip_bytes
from tests.support.files import PDF_BYTES, binary_junk, corrupt_member, csv_bytes, xlsx_bytes

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
CODES = "HOLE-1,HOLE-2,HOLE-3"


@dataclass(frozen=True)
class Expected:
    #: the final status the job must reach
    status: str
    #: words the job's error must hold (failed), or the row errors together (completed_with_errors)
    words: tuple[str, ...] = ()
    #: dotted paths into the result JSON and the values found there
    result: Mapping[str, Any] = field(default_factory=dict)
    #: words that must appear in neither the error, the row errors nor the result
    never: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    name: str
    processor: str
    #: the name the job is given (the file's own name on upload)
    filename: str
    #: what it is, in one line (the README's table)
    what: str
    expected: Expected
    #: writes the file to the path it is given
    make: Callable[[Path], None] = field(repr=False, compare=False)
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Settings fields for this case's pipeline (small chunks, to cut a file in many)
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: budgets: wall seconds, and growth of peak resident memory in MB
    seconds: float = 5.0
    megabytes: int = 128

    def to_json(self) -> dict[str, Any]:
        body = {k: v for k, v in asdict(self).items() if k != "make"}
        body["expected"] = {k: list(v) if isinstance(v, tuple) else dict(v) if isinstance(v, Mapping) else v
                            for k, v in body["expected"].items()}
        return body


def _bytes(data: bytes | Callable[[], bytes]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_bytes(data() if callable(data) else data)
    return make


def _failed(*words: str, never: Sequence[str] = ()) -> Expected:
    return Expected("failed", words, never=tuple(never))


def _completed(result: Mapping[str, Any], with_errors: Sequence[str] | None = None,
               never: Sequence[str] = ()) -> Expected:
    if with_errors is None:
        return Expected("completed", result=result, never=tuple(never))
    return Expected("completed_with_errors", tuple(with_errors), result, tuple(never))


# -- building blocks ---------------------------------------------------------------

def replace_members(data: bytes, replace: Mapping[str, bytes | None]) -> bytes:
    """The zip (an xlsx, a docx) with members replaced (None drops one); new
    names are added."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename not in replace:
                zout.writestr(info.filename, zin.read(info.filename))
        for name, content in replace.items():
            if content is not None:
                zout.writestr(name, content)
    return out.getvalue()


_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _sheet_xml(rows: Sequence[str], doctype: str = "") -> bytes:
    """A worksheet part whose rows are given as XML; `doctype` goes first."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<worksheet xmlns="{_MAIN_NS}">'
            f'<sheetData>{"".join(rows)}</sheetData></worksheet>').encode()


def _inline(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def _laughs(root: str) -> str:
    """Billion laughs: ten entities, each ten of the one before: 10**9 lols."""
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return f'<!DOCTYPE {root} [{"".join(entities)}]>'


def _two_column_book() -> bytes:
    return xlsx_bytes([["name", "n"], ["a", 1], ["b", 2]])


_SHARED_STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def _xlsx_bomb(path: Path, member: str, inflated: int) -> None:
    """An xlsx whose `member` inflates to `inflated` bytes from a few hundred KB."""
    base = _two_column_book()
    with zipfile.ZipFile(io.BytesIO(base)) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "[Content_Types].xml" and member.endswith("sharedStrings.xml"):
                data = data.replace(b"</Types>", f'<Override PartName="/{member}" '
                                                 f'ContentType="{_SHARED_STRINGS_TYPE}"/></Types>'.encode())
            if info.filename != member:
                zout.writestr(info.filename, data)
        with zout.open(member, "w", force_zip64=True) as part:
            if member.endswith("sharedStrings.xml"):
                head, cell, tail = f'<sst xmlns="{_MAIN_NS}"><si><t>', b"A", b"</t></si></sst>"
            else:
                head = (f'<worksheet xmlns="{_MAIN_NS}"><sheetData><row r="1">{_inline("A1", "name")}'
                        '</row><row r="2"><c r="A2" t="inlineStr"><is><t>')
                cell, tail = b"A", b"</t></is></c></row></sheetData></worksheet>"
            part.write(head.encode())
            block = cell * MiB
            for _ in range(inflated // MiB):
                part.write(block)
            part.write(tail)


def _cfb(streams: Mapping[str, bytes]) -> bytes:
    """A Compound File (OLE2, the container of .xls files and of password-
    protected .xlsx), version 3: a FAT sector, a directory sector, then each
    stream in whole sectors (each at least 4,096 bytes, so no mini stream)."""
    sector, end, free, fat_mark = 512, 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD
    names = list(streams)
    if len(names) > 3:
        raise ValueError("one directory sector holds the root and three streams")
    fat = [fat_mark, end]
    starts, body = [], b""
    for name in names:
        data = streams[name].ljust(max(4096, len(streams[name])), b"\0")
        data = data.ljust(-(-len(data) // sector) * sector, b"\0")
        first, count = len(fat), len(data) // sector
        starts.append(first)
        fat += [first + i + 1 for i in range(count - 1)] + [end]
        body += data
    if len(fat) > sector // 4:
        raise ValueError("the streams do not fit one FAT sector")
    fat += [free] * (sector // 4 - len(fat))

    def entry(name: str, kind: int, child: int, right: int, start: int, size: int) -> bytes:
        raw = (name + "\0").encode("utf-16-le")
        return (raw.ljust(64, b"\0") + struct.pack("<HBBIII", len(raw), kind, 1, free, right, child)
                + bytes(16 + 4 + 16) + struct.pack("<IQ", start, size))

    entries = [entry("Root Entry", 5, 1 if names else free, free, end, 0)]
    for i, name in enumerate(names):
        right = i + 2 if i + 1 < len(names) else free  # a chain of right siblings
        entries.append(entry(name, 2, free, right, starts[i], len(streams[name])))
    directory = b"".join(entries).ljust(sector, b"\0")
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16)
              + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + bytes(6)
              + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
              + struct.pack("<I", 0) + struct.pack("<I", free) * 108)
    return header + struct.pack(f"<{sector // 4}I", *fat) + directory + body


def _patch_member(data: bytes, name: str, *, flags: int = 0, method: int | None = None,
                  size: int | None = None) -> bytes:
    """The zip with one member's headers (local and central) changed: flag
    bits or'ed in, another compression method, another uncompressed size."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(name)
        directory = archive.start_dir
    local = info.header_offset
    central = data.index(b"PK\x01\x02", directory)
    while data[central + 46:central + 46 + len(name.encode())] != name.encode():
        central = data.index(b"PK\x01\x02", central + 4)
    for at, flag_at, method_at, size_at in ((local, 6, 8, 22), (central, 8, 10, 24)):
        struct.pack_into("<H", out, at + flag_at, struct.unpack_from("<H", out, at + flag_at)[0] | flags)
        if method is not None:
            struct.pack_into("<H", out, at + method_at, method)
        if size is not None:
            struct.pack_into("<I", out, at + size_at, size)
    return bytes(out)


def _docs(*extra: tuple[str, bytes]) -> list[tuple[str, bytes]]:
    """Two readable documents with known codes, then `extra`."""
    return [("a.txt", b"bore log: HOLE-1 at 12 m, see hole-2."), ("b.txt", b"nothing to see here"), *extra]


def _nested_zip(depth: int) -> bytes:
    data = b"deepest: HOLE-3"
    name = "deep.txt"
    for level in range(depth):
        data, name = zip_bytes([(name, data)]), f"level{depth - level}.zip"
    return zip_bytes(_docs((name, data)))


def _zip_of_tiny_members(path: Path, count: int, text: Callable[[int], bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for number in range(count):
            archive.writestr(f"d/{number:06d}.txt", text(number))


def _zip_member_bomb(path: Path, inflated: int) -> None:
    """A zip of two documents and one of `inflated` zeros (a few hundred KB)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in _docs():
            archive.writestr(name, data)
        with archive.open("bomb.txt", "w", force_zip64=True) as member:
            block = bytes(MiB)
            for _ in range(inflated // MiB):
                member.write(block)


def _docx_bomb(inflated: int) -> bytes:
    """A Word file whose document part inflates past the Office limit."""
    base = docx_bytes(["HOLE-2"])
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
        with zout.open("word/media/padding.bin", "w", force_zip64=True) as member:
            block = bytes(MiB)
            for _ in range(inflated // MiB):
                member.write(block)
    return out.getvalue()


# TIFF: a little-endian file of pages written by hand, so that sizes, links
# and compressions can be anything a hostile file says.
_SHORT, _LONG = 3, 4


def _tiff(pages: Sequence[Mapping[str, int]], links: Sequence[int | None] | None = None) -> bytes:
    """Pages of 1-bit pixels, each {"width", "height", "compression"} and
    optionally "strip" (its bytes, zeros by default). `links` overrides a
    page's link to the next (an offset, or a page index as -1 - index)."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    strips = []
    for page in pages:
        rows = -(-page["width"] // 8) * page["height"]
        strip = bytes(page.get("strip", min(rows, 64 * 1024)))
        strips.append((len(out), len(strip)))
        out += strip
        if len(out) % 2:
            out += b"\0"
    offsets = []
    for page, (strip_at, strip_len) in zip(pages, strips, strict=True):
        offsets.append(len(out))
        tags = [(256, _LONG, page["width"]), (257, _LONG, page["height"]), (258, _SHORT, 1),
                (259, _SHORT, page.get("compression", 1)), (262, _SHORT, 0), (273, _LONG, strip_at),
                (277, _SHORT, 1), (278, _LONG, page["height"]), (279, _LONG, strip_len)]
        out += struct.pack("<H", len(tags))
        for tag, kind, value in tags:
            field = struct.pack("<HH", value, 0) if kind == _SHORT else struct.pack("<I", value)
            out += struct.pack("<HHI", tag, kind, 1) + field
        out += b"\0\0\0\0"  # the link, set below
    struct.pack_into("<I", out, 4, offsets[0] if offsets else 0)
    for index, at in enumerate(offsets):
        link = offsets[index + 1] if index + 1 < len(offsets) else 0
        if links is not None and index < len(links) and links[index] is not None:
            link = links[index] if links[index] >= 0 else offsets[-1 - links[index]]
        struct.pack_into("<I", out, at + 2 + 9 * 12, link)
    return bytes(out)


_BLANK = {"width": 200, "height": 100}


def _tiff_pages(count: int) -> bytes:
    """`count` pages of one pixel, all sharing nothing but the header."""
    return _tiff([{"width": 1, "height": 1, "strip": 1}] * count)


def _pdf_no_pages() -> bytes:
    import pypdf

    out = io.BytesIO()
    pypdf.PdfWriter().write(out)
    return out.getvalue()


def _pdf_encrypted() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "NPI 1234567893")
    return bytes(pdf.output())


def _pdf_huge_blank_page() -> bytes:
    """One blank page of 200 x 200 inches (no text layer: it must be rendered)."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format=(14400, 14400))
    pdf.add_page()
    return bytes(pdf.output())


def _pdf(page: bytes, objects: Sequence[bytes]) -> bytes:
    """A one-page PDF written by hand: `page` holds the page dictionary's
    own entries; `objects` are numbers 4 on, the page's content first."""
    bodies = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
              b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R " + page + b" >>",
              *objects]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(bodies, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    start = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(bodies) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(bodies) + 1, start)
    return bytes(out)


def _stream(data: bytes, entries: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(data), entries, data)


def _deflated(chunk: bytes, count: int) -> bytes:
    packer = zlib.compressobj(9)
    return b"".join([*(packer.compress(chunk) for _ in range(count)), packer.flush()])


def pdf_content_bomb(inflated: int) -> bytes:
    """A page whose content stream is `inflated` bytes of spaces, deflated a thousandfold."""
    return _pdf(b"", [_stream(_deflated(b" " * MiB, inflated // MiB), b"/Filter /FlateDecode")])


def pdf_image_bomb(width: int, height: int) -> bytes:
    """A page drawing one grey image of width x height pixels, all black, deflated."""
    image = _stream(_deflated(bytes(width), height), b"/Type /XObject /Subtype /Image /Width %d /Height %d "
                    b"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode" % (width, height))
    return _pdf(b"/Resources << /XObject << /Im1 5 0 R >> >>",
                [_stream(b"q 612 0 0 792 0 0 cm /Im1 Do Q"), image])


def _pages_pdf(lines_per_page: Sequence[Sequence[str]]) -> bytes:
    return pdf_bytes((), pages=lines_per_page)


# -- tables ------------------------------------------------------------------

def _activities() -> bytes:
    return (ROOT / "examples" / "activities.csv").read_bytes()


def _activities_with(rows: Sequence[str]) -> bytes:
    return b"Site,Activity,Quantity,Unit,Country,Year\n" + "".join(r + "\n" for r in rows).encode()


def _wide_csv(columns: int) -> bytes:
    header = ",".join(f"c{i}" for i in range(columns))
    rows = [",".join(str((i * r) % 97) for i in range(columns)) for r in range(1, 4)]
    return "\n".join([header, *rows, ""]).encode()


def _far_cell() -> bytes:
    return xlsx_bytes([["name", "n"], *([f"r{i}", i] for i in range(1, 21))],
                      cells={"B1048576": "far", "XFD1048576": "far away"})


def _formulas_book() -> bytes:
    """Cells holding formulas with the values Excel cached for them, one
    without a cached value (as openpyxl writes), and text that looks like one."""
    rows = ['<row r="1">' + _inline("A1", "item") + _inline("B1", "qty") + _inline("C1", "note") + "</row>",
            '<row r="2">' + _inline("A2", "bolts") + '<c r="B2"><f>2*3</f><v>6</v></c>'
            + _inline("C2", "=HYPERLINK(&quot;http://evil.example&quot;)") + "</row>",
            '<row r="3">' + _inline("A3", "nuts") + '<c r="B3"><f>SUM(B2:B2)+1</f><v>7</v></c>'
            + _inline("C3", "@SUM(1)") + "</row>",
            '<row r="4">' + _inline("A4", "pins") + '<c r="B4"><f>B3*2</f></c>' + _inline("C4", "+1")
            + "</row>"]
    return replace_members(_two_column_book(), {"xl/worksheets/sheet1.xml": _sheet_xml(rows)})


def _xxe_book() -> bytes:
    doctype = '<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    rows = [f'<row r="1">{_inline("A1", "name")}</row>', f'<row r="2">{_inline("A2", "&xxe;")}</row>']
    return replace_members(_two_column_book(), {"xl/worksheets/sheet1.xml": _sheet_xml(rows, doctype)})


def _laughs_sheet() -> bytes:
    rows = [f'<row r="1">{_inline("A1", "name")}</row>', f'<row r="2">{_inline("A2", "&lol9;")}</row>']
    sheet = _sheet_xml(rows, _laughs("worksheet"))
    return replace_members(_two_column_book(), {"xl/worksheets/sheet1.xml": sheet})


def _laughs_workbook() -> bytes:
    base = _two_column_book()
    with zipfile.ZipFile(io.BytesIO(base)) as archive:
        workbook = archive.read("xl/workbook.xml")
    workbook = _laughs("workbook").encode() + workbook.replace(b'name="Sheet1"', b'name="&lol9;"')
    return replace_members(base, {"xl/workbook.xml": workbook})


def _not_a_workbook() -> bytes:
    return replace_members(_two_column_book(), {"xl/workbook.xml": None})


def _utf16_rows() -> list[list[str]]:
    return [["name", "qty"], *([f"row{i}", str(i)] for i in range(1, 41))]


def _ragged() -> bytes:
    return b"id,name,score\n1,a,10\n2,b,20,extra\n3,c\n4,d,40,x,y\n5,e,50\n"


def _nul_rows() -> bytes:
    rows = [f"{i},name{i},{i * 10}" for i in range(1, 31)]
    rows[3] = "4,na\x00me4,40"
    return ("id,name,score\n" + "\n".join(rows) + "\n").encode()


def _nul_padded() -> bytes:
    """A CSV a crashed writer left with a run of NUL bytes at its end."""
    return b"id,score\n" + b"".join(f"{i},{i * 2}\n".encode() for i in range(1, 2001)) + bytes(300)


def _huge_field(path: Path) -> None:
    with path.open("wb") as out:
        out.write(b"id,note,qty\n1,")
        out.write(b"x" * (10 * MiB))
        out.write(b",5\n2,short,7\n")


def _out_of_range_numbers() -> bytes:
    return (b"id,big,odd\n1,1e400,5\n2,-1e400,inf\n3,123456789012345678901234567890,nan\n"
            b"4,1.7976931348623157e308,-inf\n5,1.7976931348623157e308,2\n")


def _odd_dates() -> bytes:
    return (b"id,when\n1,0001-01-01\n2,9999-12-31\n3,2024-02-30\n4,1677-09-21\n5,2262-04-12\n"
            b"6,2024-01-15\n7,2024-13-01\n")


def _formula_text_csv() -> bytes:
    return (b"id,note\n1,=cmd|' /C calc'!A0\n2,+1+1\n3,-2+3\n4,@SUM(A1)\n5,\"=HYPERLINK(\"\"http://x\"\")\"\n"
            b"6,plain\n")


# -- the cases -----------------------------------------------------------------------

def _table_cases() -> list[Case]:
    utf16 = _utf16_rows()
    return [
        Case("empty_csv", "profile", "empty.csv", "0 bytes", _failed("the file is empty"), _bytes(b"")),
        Case("empty_named_xlsx", "profile", "empty.xlsx", "0 bytes named .xlsx",
             _failed("the file is empty"), _bytes(b"")),
        Case("blank_lines_only", "profile", "blank.csv", "nothing but line ends and spaces",
             _failed("header", "empty"), _bytes(b"\n \n\r\n\n")),
        Case("binary_junk", "profile", "junk.csv", "4 KB of random bytes named .csv",
             _failed("binary data", "not CSV or Excel"), _bytes(binary_junk)),
        Case("nul_bytes_in_a_row", "profile", "nul.csv", "a NUL byte inside row 5 of a text CSV",
             _completed({"row_count": 29}, ["row 5", "NUL"]), _bytes(_nul_rows)),
        Case("nul_padded_tail", "profile", "padded.csv", "2,000 rows, then 300 NUL bytes (a crashed writer)",
             _completed({"row_count": 2000}, ["row 2002", "NUL"]), _bytes(_nul_padded)),
        Case("utf16le_without_bom", "profile", "utf16le.csv", "UTF-16 little-endian, no byte order mark",
             _completed({"row_count": 40, "schema.qty": "int", "statistics.qty.sum": 820}),
             _bytes(lambda: csv_bytes(utf16, encoding="utf-16-le")), settings={"chunk_bytes": 256}),
        Case("utf16be_without_bom", "profile", "utf16be.csv", "UTF-16 big-endian, no byte order mark",
             _completed({"row_count": 40, "schema.qty": "int", "statistics.qty.sum": 820}),
             _bytes(lambda: csv_bytes(utf16, encoding="utf-16-be"))),
        Case("utf16_cut_mid_character", "profile", "cut16.csv", "UTF-16 with a BOM and an odd byte count",
             _failed("utf-16", "not valid"),
             _bytes(lambda: csv_bytes(utf16, encoding="utf-16-le", bom=True)[:-1])),
        Case("cr_line_ends", "profile", "mac.csv", "lines ended by CR alone (classic Mac OS)",
             _failed("CR"), _bytes(b"id,qty\r1,2\r3,4\r")),
        Case("ragged_rows", "profile", "ragged.csv", "rows with more and fewer fields than the header",
             _completed({"row_count": 3}, ["row 3 has 4 fields but the header has 3",
                                           "row 5 has 5 fields but the header has 3"]),
             _bytes(_ragged), settings={"chunk_bytes": 16}),
        Case("unclosed_quote", "profile", "quote.csv", "a quote opened in row 2 and never closed",
             _failed("row 2", "closing quote"), _bytes(b'id,note\n1,"never closed\n2,x\n')),
        Case("header_only", "profile", "header.csv", "a header and no rows",
             _failed("header but no data rows"), _bytes(b"id,name\n")),
        Case("header_line_2mb", "profile", "long.csv", "2 MB without a line end",
             _failed("longer than 1 MiB"), _bytes(lambda: b"a," * MiB)),
        Case("field_10mb", "profile", "bigfield.csv", "one field of 10 MB in row 2",
             _completed({"row_count": 2, "schema.note": "string", "statistics.qty.sum": 12}), _huge_field,
             megabytes=200),
        Case("columns_20000", "profile", "wide.csv", "20,000 columns",
             _failed("20,000 columns", "16,384"), _bytes(lambda: _wide_csv(20_000))),
        Case("field_10mb_beside_a_ragged_row", "profile", "bigragged.csv",
             "a 10 MB field in a chunk that also holds a row with too many fields",
             _completed({"row_count": 2}, ["row 3 has 4 fields but the header has 3"]),
             _bytes(lambda: b"id,note,qty\n1," + b"x" * (10 * MiB) + b",5\n2,a,b,c\n3,short,7\n"),
             megabytes=200),
        Case("duplicate_headers", "profile", "dup.csv", "the same header three times, one empty",
             _completed({"schema.a": "int", "schema.a.1": "int", "schema.Unnamed: 3": "string"}),
             _bytes(b"a,a,a,\n1,2,x,\n3,4,y,\n")),
        Case("numbers_out_of_range", "profile", "huge.csv", "1e400, inf, nan, 30-digit integers",
             _completed({"row_count": 5}), _bytes(_out_of_range_numbers)),
        Case("dates_out_of_range", "profile", "dates.csv", "year 1 and 9999, 30 February, month 13",
             _completed({"row_count": 7}), _bytes(_odd_dates)),
        Case("formula_text_csv", "profile", "inject.csv", "cells that a spreadsheet would run as formulas",
             _completed({"row_count": 6, "schema.note": "string"}), _bytes(_formula_text_csv)),
        Case("xlsx_named_csv", "profile", "export.csv", "an Excel workbook named .csv",
             _completed({"row_count": 2, "schema.n": "int"}), _bytes(_two_column_book)),
        Case("csv_named_xlsx", "profile", "report.xlsx", "CSV text named .xlsx",
             _completed({"row_count": 2, "schema.n": "int"}), _bytes(b"name,n\na,1\nb,2\n")),
        Case("xlsx_truncated", "profile", "cut.xlsx", "a workbook cut at two thirds",
             _failed("damaged or truncated"),
             _bytes(lambda: (lambda b: b[: len(b) * 2 // 3])(
                 xlsx_bytes([["a", "b"], *([i, f"text {i}"] for i in range(2000))])))),
        Case("xlsx_corrupt_sheet", "profile", "damaged.xlsx", "a sheet's compressed bytes scrambled",
             _failed("damaged", "Sheet1"),
             _bytes(lambda: corrupt_member(xlsx_bytes([["id", "text"], *([i, f"value {i} " * 3]
                                                                         for i in range(3000))]),
                                           "xl/worksheets/sheet1.xml", 0.9))),
        Case("xlsx_not_a_workbook", "profile", "parts.xlsx", "an Office zip without xl/workbook.xml",
             _failed("not an Excel workbook"), _bytes(_not_a_workbook)),
        Case("xlsx_zip_bomb_sheet", "profile", "bomb.xlsx", "a sheet that inflates to 300 MB from 300 KB",
             _failed("zip bomb", "xl/worksheets/sheet1.xml"),
             lambda p: _xlsx_bomb(p, "xl/worksheets/sheet1.xml", 300 * MiB)),
        Case("xlsx_shared_strings_bomb", "profile", "strings.xlsx",
             "shared strings that inflate to 200 MB (held in memory by any reader)",
             _failed("shared strings", "xl/sharedStrings.xml"),
             lambda p: _xlsx_bomb(p, "xl/sharedStrings.xml", 200 * MiB)),
        Case("xlsx_billion_laughs_sheet", "profile", "laughs.xlsx", "billion laughs in the sheet's XML",
             _failed("XML entities", "xl/worksheets/sheet1.xml"), _bytes(_laughs_sheet)),
        Case("xlsx_billion_laughs_workbook", "profile", "laughs_wb.xlsx", "billion laughs in workbook.xml",
             _failed("XML entities", "xl/workbook.xml"), _bytes(_laughs_workbook)),
        Case("xlsx_external_entity", "profile", "xxe.xlsx", "an external entity pointing at /etc/passwd",
             _failed("XML entities", never=["root:"]), _bytes(_xxe_book)),
        Case("xlsx_password_protected", "profile", "secret.xlsx",
             "a password-protected workbook (an OLE2 file holding EncryptedPackage)",
             _failed("locked with a password", never=["97-2003"]),
             _bytes(lambda: _cfb({"EncryptionInfo": b"\x04\x00\x04\x00\x40\x00\x00\x00",
                                  "EncryptedPackage": random.Random(3).randbytes(8192)}))),
        Case("xls_legacy", "profile", "old.xls",
             "a legacy Excel 97-2003 workbook (OLE2 with a Workbook stream)",
             _failed("legacy Excel 97-2003"), _bytes(lambda: _cfb({"Workbook": bytes(4096)}))),
        Case("xlsx_far_cell", "profile", "far.xlsx",
             "values in B1048576 and XFD1048576, a million rows below the table",
             _completed({"row_count": 21, "schema.n": "int", "quality_issues.invalid_values.n.examples":
                         [{"row": 1048576, "value": "far"}]}), _bytes(_far_cell)),
        Case("xlsx_formulas", "profile", "formulas.xlsx",
             "formulas with cached values, one without, text that looks like formulas",
             _completed({"row_count": 3, "schema.qty": "int", "statistics.qty.sum": 13,
                         "quality_issues.missing_values.qty.count": 1}), _bytes(_formulas_book)),
        Case("word_document", "profile", "notes.csv", "a Word document named .csv",
             _failed("Word document", "not CSV or Excel"), _bytes(lambda: docx_bytes(["hello"]))),
        Case("pdf_named_csv", "profile", "invoice.csv", "a PDF named .csv",
             _failed("PDF document, not CSV or Excel"), _bytes(PDF_BYTES)),
        Case("gzip_csv", "profile", "data.csv.gz", "a gzipped CSV",
             _failed("gzip archive", "not CSV or Excel"),
             _bytes(lambda: __import__("gzip").compress(b"a,b\n1,2\n", mtime=0))),
        Case("carbon_no_activity_column", "carbon", "nothing.csv", "a table with none of carbon's columns",
             _failed("activity"), _bytes(b"colour,size\nred,1\nblue,2\n")),
        Case("carbon_bad_amounts", "carbon", "amounts.csv", "amounts of inf, 1e400, -5, text and none",
             _completed({"rows_calculated": 1},
                        ["row 3", "row 4", "row 5", "row 6", "row 7"]),
             _bytes(lambda: _activities_with([
                 "A,Electricity,100,kWh,UK,2023", "B,Electricity,inf,kWh,UK,2023",
                 "C,Electricity,1e400,kWh,UK,2023", "D,Electricity,-5,kWh,UK,2023",
                 "E,Electricity,lots,kWh,UK,2023", "F,Electricity,,kWh,UK,2023"]))),
        Case("carbon_formula_activity", "carbon", "inject.csv", "activities that are spreadsheet formulas",
             _completed({"rows_calculated": 1}, ["row 3", "row 4"]),
             _bytes(lambda: _activities_with([
                 "A,Electricity,100,kWh,UK,2023", "B,=HYPERLINK(\"http://evil\"),5,kWh,UK,2023",
                 "C,@SUM(1),5,kWh,UK,2023"]))),
        Case("carbon_field_10mb", "carbon", "bigact.csv", "a 10 MB activity in row 3",
             _completed({"rows_calculated": 1}, ["row 3"]),
             _bytes(lambda: _activities_with(["A,Electricity,100,kWh,UK,2023",
                                              "B," + "Z" * (10 * MiB) + ",5,kWh,UK,2023"])), megabytes=200),
    ]


def _scan_cases() -> list[Case]:
    codes = {"target_hole_codes": CODES}
    good = {"documents": 3, "total_matches": 2, "documents_with_codes": 1}
    return [
        Case("zip_member_bomb", "scan", "bomb.zip", "a member of 200 MB of zeros (200 KB packed)",
             _completed(good | {"unreadable_documents": 1}, ["bomb.txt", "over 50 MB"]),
             lambda p: _zip_member_bomb(p, 200 * MiB), options=codes),
        Case("zip_member_lying_size", "scan", "lying.zip",
             "a member whose headers say 1 KB but inflates to 20 MB",
             _completed(good | {"unreadable_documents": 1}, ["lying.txt", "damaged"]),
             _bytes(lambda: _patch_member(zip_bytes(_docs(("lying.txt", b"HOLE-3 " * (3 * MiB)))),
                                          "lying.txt", size=1024)), options=codes),
        Case("zip_path_traversal", "scan", "traversal.zip",
             "members named ../../etc/passwd, /etc/shadow.txt, ..\\..\\win.ini, a/../../b.txt",
             _completed({"documents": 6, "total_matches": 6, "unreadable_documents": 0}),
             _bytes(lambda: zip_bytes(_docs(("../../etc/passwd", b"HOLE-1"), ("/etc/shadow.txt", b"HOLE-1"),
                                            ("..\\..\\win.ini", b"HOLE-2"), ("a/../../b.txt", b"HOLE-3")))),
             options=codes),
        Case("zip_nested_12_deep", "scan", "nested.zip", "a zip in a zip, twelve deep",
             _completed(good | {"unreadable_documents": 1}, ["level1.zip", "zip archive, not a document"]),
             _bytes(lambda: _nested_zip(12)), options=codes),
        Case("zip_encrypted_member", "scan", "locked.zip", "a member flagged as encrypted",
             _completed(good | {"unreadable_documents": 1}, ["secret.txt", "encrypted"]),
             _bytes(lambda: _patch_member(zip_bytes(_docs(("secret.txt", b"HOLE-3"))), "secret.txt",
                                          flags=1)),
             options=codes),
        Case("zip_unknown_compression", "scan", "ppmd.zip", "a member compressed with a method zipfile lacks",
             _completed(good | {"unreadable_documents": 1}, ["odd.txt", "cannot be read from the zip"]),
             _bytes(lambda: _patch_member(zip_bytes(_docs(("odd.txt", b"HOLE-3"))), "odd.txt", method=98)),
             options=codes),
        Case("zip_100001_members", "scan", "many.zip", "100,001 tiny members, one past the limit",
             _failed("100,001 documents", "at most 100,000"),
             lambda p: _zip_of_tiny_members(p, 100_001, lambda n: b"x"), options=codes, seconds=10,
             megabytes=200),
        Case("zip_3000_members", "scan", "three_thousand.zip", "3,000 tiny members, 100 to a chunk",
             _completed({"documents": 3000, "total_matches": 300, "documents_with_codes": 300}),
             lambda p: _zip_of_tiny_members(p, 3000, lambda n: b"HOLE-2" if n % 10 == 0 else b"none"),
             options=codes | {"documents_per_chunk": 100}, seconds=10),
        Case("zip_truncated", "scan", "cut.zip", "a zip cut before its directory",
             _failed("the zip is damaged"),
             _bytes(lambda: zip_bytes(_docs(("c.txt", b"HOLE-3" * 1000)))[:-60]), options=codes),
        Case("zip_empty", "scan", "empty.zip", "a zip with no members",
             _failed("holds no documents"), _bytes(lambda: zip_bytes([])), options=codes),
        Case("zip_only_folders", "scan", "folders.zip", "folders, __MACOSX and dot files only",
             _failed("holds no documents"),
             _bytes(lambda: zip_bytes([("dir/", b""), ("__MACOSX/._a.txt", b"x"), (".DS_Store", b"x")])),
             options=codes),
        Case("zip_fake_pdf_member", "scan", "fake.zip", "a member named .pdf that is text",
             _completed(good | {"unreadable_documents": 1}, ["report.pdf", "its name says a PDF"]),
             _bytes(lambda: zip_bytes(_docs(("report.pdf", b"HOLE-3 is not a pdf")))), options=codes),
        Case("zip_office_bomb_member", "scan", "docbomb.zip", "a Word member that inflates to 600 MB",
             _completed(good | {"unreadable_documents": 1}, ["bomb.docx", "zip bomb"]),
             _bytes(lambda: zip_bytes(_docs(("bomb.docx", _docx_bomb(600 * MiB))))), options=codes),
        Case("zip_laughs_xlsx_member", "scan", "laughs.zip", "an Excel member with billion laughs",
             _completed(good | {"unreadable_documents": 1}, ["laughs.xlsx", "XML entities"]),
             _bytes(lambda: zip_bytes(_docs(("laughs.xlsx", _laughs_sheet())))), options=codes),
        Case("zip_manifest_escapes", "scan", "manifest.zip",
             "a manifest naming ../../etc/passwd, another bucket and a missing member",
             _completed({"documents": 4, "total_matches": 2, "unreadable_documents": 3},
                        ["../../etc/passwd", "not in the zip", "s3://elsewhere/x.txt"], never=["root:"]),
             _bytes(lambda: zip_bytes(_docs(("manifest.csv", b"document\na.txt\n../../etc/passwd\n"
                                                              b"s3://elsewhere/x.txt\nmissing.txt\n")))),
             options=codes),
        Case("manifest_of_internal_keys", "scan", "keys.csv",
             "a manifest of the pipeline's own keys, another bucket and a missing key",
             _completed({"documents": 4, "unreadable_documents": 4},
                        ["off limits", "another bucket", "no such key"]),
             _bytes(b"key\nwork/x/partials/000000.json\nresults/y/result.json\ns3://elsewhere/k.txt\n"
                    b"uploads/nobody/missing.txt\n"), options=codes),
        Case("scan_binary_junk", "scan", "junk.zip", "random bytes named .zip",
             _failed("binary data", "zip of documents"), _bytes(binary_junk), options=codes),
    ]


def _pages_cases() -> list[Case]:
    return [
        Case("tiff_pixel_bomb", "pages", "bomb.tiff", "page 2 declares 100,000 x 100,000 pixels",
             _completed({"total_pages": 2}, ["page 2 is 100,000 x 100,000 pixels", "over the limit"]),
             _bytes(lambda: _tiff([_BLANK, {"width": 100_000, "height": 100_000, "strip": 64}]))),
        Case("tiff_corrupt_first_page", "pages", "corrupt.tiff", "the header points past the end of the file",
             _failed("TIFF"), _bytes(lambda: b"II*\x00" + struct.pack("<I", 10**9) + bytes(64))),
        Case("tiff_truncated_page", "pages", "cut.tiff", "page 2's pixels cut off by the end of the file",
             _completed({"total_pages": 2}, ["page 2"]),
             _bytes(lambda: _tiff([_BLANK, {"width": 2000, "height": 2000, "strip": 10}]))),
        Case("tiff_page_loop", "pages", "loop.tiff", "page 2 links back to page 1",
             _failed("TIFF"), _bytes(lambda: _tiff([_BLANK, _BLANK], links=[None, -1]))),
        Case("tiff_unknown_compression", "pages", "odd.tiff", "page 1 compressed with a scheme nobody knows",
             _completed({"total_pages": 2}, ["page 1"]),
             _bytes(lambda: _tiff([{**_BLANK, "compression": 60_000}, _BLANK]))),
        Case("tiff_10001_pages", "pages", "long.tiff", "10,001 pages of one pixel",
             _failed("more than 10,000 pages"), _bytes(lambda: _tiff_pages(10_001)), seconds=10),
        Case("tiff_header_only", "pages", "header.tiff", "a TIFF header and nothing else",
             _failed("TIFF"), _bytes(b"II*\x00\x08")),
        Case("pdf_not_a_pdf", "pages", "junk.pdf", "%PDF- and then junk",
             _failed("the PDF cannot be read"),
             _bytes(lambda: b"%PDF-1.7\n" + random.Random(5).randbytes(2000))),
        Case("pdf_truncated", "pages", "cut.pdf", "a two-page PDF cut in half",
             _failed("the PDF cannot be read"),
             _bytes(lambda: (lambda b: b[: len(b) // 2])(_pages_pdf([["page one"], ["page two"]])))),
        Case("pdf_password", "pages", "locked.pdf", "a PDF that needs a password to open",
             _failed("password"), _bytes(_pdf_encrypted)),
        Case("pdf_no_pages", "pages", "none.pdf", "a PDF whose page tree is empty",
             _failed("the PDF cannot be read", never=["PDFium: Success"]), _bytes(_pdf_no_pages)),
        Case("pdf_content_bomb", "pages", "content.pdf",
             "a page whose content stream inflates to 512 MB from 500 KB",
             _completed({"total_pages": 1, "pages_failed": 1}, ["page 1", "decompression bomb"]),
             _bytes(lambda: pdf_content_bomb(512 * MiB))),
        Case("pdf_image_bomb", "pages", "image.pdf",
             "a page drawing a 30,000 x 30,000 pixel image (900 KB packed)",
             _completed({"total_pages": 1, "pages_failed": 1},
                        ["page 1 holds an image of 30,000 x 30,000 pixels"]),
             _bytes(lambda: pdf_image_bomb(30_000, 30_000))),
        Case("pdf_poster_page", "pages", "poster.pdf", "a blank page of 200 x 200 inches, rendered for OCR",
             _completed({"total_pages": 1, "npi_pages": []}), _bytes(_pdf_huge_blank_page),
             settings={"max_page_pixels": 20_000_000}, seconds=10, megabytes=150),
        Case("text_named_pdf", "pages", "notes.pdf", "plain text named .pdf",
             _failed("text", "multi-page TIFF or a PDF"), _bytes(b"just some text, NPI 1234567893\n")),
        Case("png_to_pages", "pages", "scan.png", "a PNG image",
             _failed("PNG image", "multi-page TIFF or a PDF"),
             _bytes(lambda: b"\x89PNG\r\n\x1a\n" + bytes(64))),
    ]


def all_cases() -> list[Case]:
    cases = _table_cases() + _scan_cases() + _pages_cases()
    names = [case.name for case in cases]
    if len(set(names)) != len(names):
        raise ValueError(f"case names repeat: {sorted(n for n in names if names.count(n) > 1)}")
    return cases


#: One sound job per processor, run beside every bad one: each must end as
#: it does alone.
GOOD = {
    "profile": Case("good_profile", "profile", "sales.csv", "examples/sales.csv",
                    _completed({"row_count": 10, "schema.age": "int", "statistics.age.sum": 366}),
                    _bytes(lambda: (ROOT / "examples" / "sales.csv").read_bytes())),
    "carbon": Case("good_carbon", "carbon", "activities.csv", "examples/activities.csv",
                   _completed({"rows_calculated": 17, "totals.kg_co2e": 212966.514832}), _bytes(_activities)),
    "scan": Case("good_scan", "scan", "drawings.zip", "examples/drawings",
                 _completed({"documents": 3, "total_matches": 4, "documents_with_codes": 2}),
                 _bytes(lambda: zip_bytes([(p.name, p.read_bytes()) for p in
                                           sorted((ROOT / "examples" / "drawings").iterdir())])),
                 options={"target_hole_codes": CODES}),
    "pages": Case("good_pages", "pages", "claims.pdf", "two pages of text, an NPI on page 2",
                  _completed({"total_pages": 2, "npi_pages": [2]}),
                  _bytes(lambda: _pages_pdf([["Claim form, page one"],
                                             ["Rendering provider NPI 1234567893"]]))),
}


def write_corpus(out_dir: str | Path, names: Sequence[str] | None = None) -> list[Case]:
    """Write the cases (all, or those named) and the good inputs under
    out_dir, and cases.json beside them; returns the cases written."""
    out = Path(out_dir)
    cases = [c for c in all_cases() if names is None or c.name in names]
    listing = []
    for case in [*cases, *GOOD.values()]:
        folder = out / case.name
        folder.mkdir(parents=True, exist_ok=True)
        case.make(folder / case.filename)
        listing.append({**case.to_json(), "path": f"{case.name}/{case.filename}",
                        "good": case in GOOD.values()})
    (out / "cases.json").write_text(json.dumps(listing, indent=1))
    return cases


def load_corpus(out_dir: str | Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """(the bad cases, the good input by processor) from a written corpus."""
    listing = json.loads((Path(out_dir) / "cases.json").read_text())
    return ([c for c in listing if not c["good"]],
            {c["processor"]: c for c in listing if c["good"]})


def markdown_table(cases: Sequence[Case] | None = None) -> str:
    """The README's table: one line per case."""
    lines = ["| case | processor | what it is | expected outcome |", "|---|---|---|---|"]
    for case in cases if cases is not None else all_cases():
        lines.append(f"| `{case.name}` | {case.processor} | {case.what} | {_outcome(case.expected)} |")
    return "\n".join(lines) + "\n"


def _outcome(expected: Expected) -> str:
    words = ", ".join(f"“{w}”" for w in expected.words)
    values = ", ".join(f"{k} = {json.dumps(v)}" for k, v in expected.result.items())
    if expected.status == "failed":
        text = f"failed: {words}"
    elif expected.status == "completed":
        text = f"completed: {values}"
    else:
        text = f"completed_with_errors: {values}; errors name {words}"
    never = ", ".join(f"“{w}”" for w in expected.never)
    return (text + (f"; never {never}" if never else "")).replace("|", "\\|")


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["--table"]:
        sys.stdout.write(markdown_table())
        return 0
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.stderr.write("usage: python -m tests.corpus.make_corpus OUT_DIR | --table\n")
        return 2
    cases = write_corpus(argv[0])
    print(f"{len(cases)} cases (and {len(GOOD)} good inputs) written to {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
