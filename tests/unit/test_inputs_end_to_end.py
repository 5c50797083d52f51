"""Whole jobs on the in-memory pipeline: every input Sluice promises to read
ends `completed` with the right figures and row numbers; every input it
cannot read ends `failed` with a message a person understands; bad rows end
`completed_with_errors` with the rows named. The seed 004 file record says
success or error."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.support.files import (
    PDF_BYTES,
    TIFF_LE_BYTES,
    XLS_OLE_BYTES,
    binary_junk,
    corrupt_member,
    csv_bytes,
    plain_zip,
    xlsx_bytes,
)

HEADER = ["name", "qty", "price", "note"]
SEED_004_FIELDS = {"file_name", "upload_timestamp", "processed_timestamp", "status", "row_count",
                   "schema", "statistics", "quality_issues"}


def table(n: int, special: str) -> list[list[str]]:
    """HEADER and n rows. qty is an int column with a missing value every 20
    rows and an invalid value (holding `special`, text the encoding under
    test must carry) every 20 rows; note holds delimiters, quotes and
    embedded newlines."""
    notes = ["plain", "with, comma", 'say "hi"', "two\nlines", "semi;colon|pipe\ttab", "crlf\r\ninside"]
    rows = [HEADER]
    for i in range(n):
        qty = "" if i % 20 == 3 else f"{special}{i}" if i % 20 == 13 else str(i)
        rows.append([f"{special} {i}", qty, f"{i * 1.25:.2f}", notes[i % len(notes)]])
    return rows


def check_table(ran, rows, special):
    assert ran.job.status.value == "completed", ran.job.error
    s = ran.result
    n = len(rows) - 1
    assert s["row_count"] == n
    assert s["schema"] == {"name": "string", "qty": "int", "price": "float", "note": "string"}
    qty = [int(r[1]) for r in rows[1:] if r[1].isdigit()]
    assert s["statistics"]["qty"]["count"] == len(qty)
    assert s["statistics"]["qty"]["sum"] == sum(qty)
    assert s["statistics"]["price"]["sum"] == pytest.approx(sum(float(r[2]) for r in rows[1:]))
    bad = [(i + 2, r[1]) for i, r in enumerate(rows[1:]) if r[1] and not r[1].isdigit()]
    missing = sum(1 for r in rows[1:] if not r[1])
    issues = s["quality_issues"]
    assert issues["missing_values"] == {"qty": {"count": missing, "percentage": round(100 * missing / n, 2)}}
    assert issues["invalid_values"]["qty"]["count"] == len(bad)
    # Row numbers and decoded text both survive the trip.
    assert issues["invalid_values"]["qty"]["examples"] == [{"row": r, "value": v} for r, v in bad[:3]]
    assert all(special in v for _, v in bad)
    record = ran.record
    assert SEED_004_FIELDS <= set(record)
    assert record["status"] == "success" and "error_message" not in record
    assert record["file_name"] == ran.job.filename
    assert record["row_count"] == n
    assert {k: record[k] for k in ("schema", "statistics", "quality_issues")} == {
        k: s[k] for k in ("schema", "statistics", "quality_issues")}


# -- CSV in any dialect and encoding -------------------------------------------------------

@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_any_delimiter_is_sniffed(run_job, delimiter):
    rows = table(60, "Zoë")
    ran = run_job(csv_bytes(rows, delimiter=delimiter), chunk_bytes=200)
    assert ran.job.chunks_total > 5
    check_table(ran, rows, "Zoë")


def test_delimiter_option(run_job):
    rows = table(30, "Zoë")
    ran = run_job(csv_bytes(rows, delimiter="|"), chunk_bytes=100, options={"delimiter": "|"})
    check_table(ran, rows, "Zoë")


@pytest.mark.parametrize("chunk_bytes", [1, 64, 10**6])
def test_quoted_fields_with_embedded_newlines_in_many_chunks(run_job, chunk_bytes):
    rows = table(40, "José")
    ran = run_job(csv_bytes(rows), chunk_bytes=chunk_bytes)
    check_table(ran, rows, "José")


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
@pytest.mark.parametrize("trailing", [True, False])
def test_line_ends(run_job, newline, trailing):
    rows = table(45, "Zoë")
    ran = run_job(csv_bytes(rows, newline=newline, trailing_newline=trailing), chunk_bytes=150)
    check_table(ran, rows, "Zoë")


@pytest.mark.parametrize("encoding, bom, special", [
    ("utf-8", True, "Zoë 日本"),
    ("cp1252", False, "“Zoë” €"),
    ("latin-1", False, "Zoë ½ façade"),
    ("utf-16-le", True, "Zoë 日本"),
    ("utf-16-be", True, "Zoë 日本"),
    ("utf-16-le", False, "Zoë"),
    ("utf-16-be", False, "Zoë"),
])
def test_encodings(run_job, encoding, bom, special):
    rows = table(50, special)
    data = csv_bytes(rows, encoding=encoding, bom=bom, newline="\r\n")
    ran = run_job(data, chunk_bytes=300)
    assert ran.job.chunks_total > 3
    check_table(ran, rows, special)


def test_latin1_file_whose_last_byte_is_not_ascii(run_job):
    ran = run_job("name,qty\nJosé,1\nZoë,2\nAnn,x\nRené".encode("latin-1"))
    assert ran.job.status.value == "completed", ran.job.error
    assert ran.result["row_count"] == 4


def test_encoding_option(run_job):
    rows = table(20, "Zoë")
    ran = run_job(csv_bytes(rows, encoding="latin-1"), options={"encoding": "latin-1"}, chunk_bytes=100)
    check_table(ran, rows, "Zoë")


# -- Excel ------------------------------------------------------------------------------------

def typed_sheet():
    rows = [["when", "amount", "paid", "count", "who"]]
    for i in range(1, 31):
        rows.append([dt.datetime(2024, 1, i), i * 1.5, i % 3 == 0, i, f"Zoë {i}"])
        if i in (5, 6, 20):
            rows.append([])  # empty rows in the middle
    rows[12][3] = "twelve"  # an invalid int
    return rows


def test_xlsx_first_sheet(run_job):
    book = xlsx_bytes(sheets={"Data": typed_sheet(), "Other": [["x"], ["1"]]})
    ran = run_job(book, filename="book.xlsx", chunk_rows=4)
    assert ran.job.status.value == "completed", ran.job.error
    assert ran.job.chunks_total > 5
    s = ran.result
    assert s["row_count"] == 30
    assert s["schema"] == {"when": "date", "amount": "float", "paid": "bool", "count": "int", "who": "string"}
    assert s["statistics"]["when"] == {"min": "2024-01-01", "max": "2024-01-30", "count": 30}
    assert s["statistics"]["amount"]["sum"] == pytest.approx(1.5 * 465)
    assert s["statistics"]["paid"] == {"count": 30, "true": 10, "false": 20}
    assert s["statistics"]["count"]["count"] == 29
    # The sheet's own row number: header 1, rows 2-6, empty 7, row 8, empty 9,
    # rows 10-13; "twelve" is in the 13th row of the sheet.
    assert typed_sheet()[13 - 1][3] == "twelve"
    assert s["quality_issues"]["invalid_values"]["count"]["examples"] == [{"row": 13, "value": "twelve"}]
    assert ran.record["status"] == "success" and ran.record["row_count"] == 30


@pytest.mark.parametrize("sheet", ["Second", 2, "2"])
def test_xlsx_options_sheet(run_job, sheet):
    book = xlsx_bytes(sheets={"First": [["a"], [1]], "Second": [["b", "c"], [1, "x"], [2, "y"], [3, "z"]]})
    ran = run_job(book, filename="book.xlsx", options={"sheet": sheet})
    assert ran.job.status.value == "completed", ran.job.error
    assert ran.result["schema"] == {"b": "int", "c": "string"}
    assert ran.result["row_count"] == 3


def test_xlsx_bytes_named_csv_are_read_as_a_workbook(run_job):
    book = xlsx_bytes(typed_sheet())
    ran = run_job(book, filename="export.csv")
    assert ran.job.status.value == "completed", ran.job.error
    assert ran.result["row_count"] == 30
    assert ran.result["schema"]["when"] == "date"


def test_csv_named_xlsx_is_read_as_csv(run_job):
    rows = table(20, "Zoë")
    ran = run_job(csv_bytes(rows), filename="report.xlsx")
    check_table(ran, rows, "Zoë")


# -- inputs that cannot be read -------------------------------------------------------------

def _truncated_xlsx():
    book = xlsx_bytes([["a", "b"]] + [[i, f"text {i}"] for i in range(2000)])
    return book[: len(book) * 2 // 3]


@pytest.mark.parametrize("data, filename, options, message", [
    (b"", "empty.csv", {}, "empty.csv: the file is empty"),
    (b"id,name,amount\n", "header.csv", {}, "header.csv: the file has a header but no data rows"),
    (b"id,name,amount\r\n\r\n\r\n", "blank.csv", {}, "blank.csv: the file has a header but no data rows"),
    (xlsx_bytes([["id", "name"]]), "header.xlsx", {}, "header.xlsx: the sheet has a header but no data rows"),
    (xlsx_bytes([]), "blank.xlsx", {}, "blank.xlsx: the sheet is empty"),
    (PDF_BYTES, "invoice.csv", {}, "invoice.csv: this is a PDF document, not CSV or Excel"),
    (TIFF_LE_BYTES, "scan.csv", {}, "scan.csv: this is a TIFF image, not CSV or Excel"),
    (binary_junk(), "junk.csv", {}, "junk.csv: this is binary data, not CSV or Excel"),
    (plain_zip(), "archive.csv", {}, "archive.csv: this is a zip archive, not CSV or Excel"),
    (XLS_OLE_BYTES, "old.xls", {}, "old.xls: this is a legacy Excel 97-2003 (.xls)"),
    (_truncated_xlsx(), "cut.xlsx", {}, "cut.xlsx: the Excel file is damaged or truncated"),
    (xlsx_bytes([["a"], [1]]), "book.xlsx", {"sheet": "Budget"},
     "book.xlsx: options.sheet 'Budget' is not in the workbook; its sheets are ['Sheet1']"),
    (b'id,note\n1,"never closed\n2,x\n', "quote.csv", {},
     'quote.csv: row 2: a quoted field starts here but its closing quote (") is missing'),
    ("name\nJos\xe9\n".encode("latin-1"), "bad.csv", {"encoding": "utf-8"},
     "bad.csv: every data row was rejected: row 2 has bytes that are not valid utf-8 text (byte 0xe9)"),
], ids=lambda value: value if isinstance(value, str) and "." in value else None)
def test_unreadable_input_fails_with_a_clear_message(run_job, data, filename, options, message):
    ran = run_job(data, filename=filename, options=options, chunk_bytes=50)
    assert ran.job.status.value == "failed"
    assert ran.job.error.startswith(message), ran.job.error
    assert ran.result is None
    assert SEED_004_FIELDS <= set(ran.record)
    assert ran.record["status"] == "error"
    assert ran.record["error_message"] == ran.job.error
    assert ran.record["file_name"] == filename
    assert (ran.record["row_count"], ran.record["schema"], ran.record["statistics"]) == (0, {}, {})


def test_damaged_xlsx_fails_cleanly(run_job):
    book = xlsx_bytes([["id", "text"]] + [[i, f"value number {i} " * 3] for i in range(3000)])
    ran = run_job(corrupt_member(book, "xl/worksheets/sheet1.xml", 0.9), filename="damaged.xlsx")
    assert ran.job.status.value == "failed"
    assert ran.job.error.startswith("damaged.xlsx: the Excel file is damaged")
    assert ran.record["status"] == "error"


# -- bad rows among good ones -------------------------------------------------------------

def test_bad_rows_are_named_and_the_rest_kept(run_job):
    lines = ["id,name,score"]
    for i in range(1, 61):
        lines.append(f"{i},n{i},{i * 2}")
    lines[10] = "10,too,many,fields"
    lines[31] = '31,"multi\nline",7,8'
    lines[50] = "50,x,1,2,3,4"
    data = ("\n".join(lines) + "\n").encode()
    ran = run_job(data, chunk_bytes=60)
    assert ran.job.status.value == "completed_with_errors"
    assert ran.job.chunks_total > 5
    s = ran.result
    assert s["row_count"] == 57
    assert s["errors"]["rejected_rows"] == 3
    assert [(e["row"], e["error"]) for e in s["errors"]["rows"]] == [
        (11, "row 11 has 4 fields but the header has 3"),
        (32, "row 32 has 4 fields but the header has 3"),
        (51, "row 51 has 6 fields but the header has 3"),
    ]
    assert s["errors"]["failed_chunks"] == []
    assert s["statistics"]["id"]["count"] == 57
    assert ran.record["status"] == "success" and ran.record["row_count"] == 57


def test_undecodable_bytes_late_in_the_file_reject_only_their_row(run_job):
    # The sniffed sample is all ASCII (UTF-8); a Latin-1 byte comes later.
    lines = ["id,name"] + [f"{i},name{i}" for i in range(1, 8001)]
    lines[7000] = "7000,Jos\xe9"
    data = ("\n".join(lines) + "\n").encode("latin-1")
    assert len(data) > 64 * 1024
    ran = run_job(data, chunk_bytes=16 * 1024)
    assert ran.job.status.value == "completed_with_errors"
    assert ran.result["errors"]["failed_chunks"] == []
    assert ran.result["errors"]["rows"] == [{
        "type": "row_error", "row": 7001,
        "error": "row 7001 has bytes that are not valid utf-8 text (byte 0xe9); save the file as UTF-8"}]
    assert ran.result["row_count"] == 7999


def test_unclosed_quote_late_in_the_file_keeps_the_earlier_rows(run_job):
    lines = ["id,note"] + [f"{i},ok" for i in range(1, 101)]
    lines[90] = '90,"never closed'
    ran = run_job(("\n".join(lines) + "\n").encode(), chunk_bytes=100)
    assert ran.job.status.value == "completed_with_errors"
    assert ran.job.chunks_total > 5
    errors = ran.result["errors"]
    assert errors["failed_chunks"] == []
    assert [(e["row"], e["error"]) for e in errors["rows"]] == [
        (91, 'row 91: a quoted field starts here but its closing quote (") is missing, '
             "so this row and every line after it could not be read")]
    # rows 2-90 (ids 1-89) are all kept
    assert ran.result["row_count"] == 89
    assert ran.result["statistics"]["id"]["max"] == 89


def test_a_file_whose_every_row_is_rejected_says_so(run_job):
    ran = run_job(b"a,b\n1,2,3\n4,5,6\n")
    assert ran.job.status.value == "failed"
    assert "row 2 has 3 fields but the header has 2" in ran.job.error
