"""The Excel report: written in write-only mode, read back with openpyxl in
normal mode (and, where it is installed, opened by LibreOffice) to check what
a user would see: sheet order, styled and frozen headers, real numbers and
dates, text that can never run as a formula, and row sheets split at the
row limit."""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from chalicelib.reports import (
    Column,
    Report,
    RowSheet,
    SummarySection,
    SummaryTable,
    error_sheet,
    write_report,
)
from chalicelib.reports import excel as excel_module
from chalicelib.reports.cells import FORMULA_PREFIXES

DANGEROUS = ["=1+2", "=HYPERLINK(\"http://x\",\"y\")", "+1", "-1+2", "-x", "@SUM(A1)",
             "\tx", "\rx", "\nx", "=", "-"]
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
# LibreOffice's CSV export options: comma, double quote, UTF-8 (76), ...,
# token 9 false = raw values rather than as shown, token 12 -1 = every sheet,
# each to <stem>-<sheet>.csv (LibreOffice 7.2 and later).
CSV_EVERY_SHEET = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"

COLUMNS = [Column("name"), Column("amount", "number"), Column("count", "integer"),
           Column("day", "date"), Column("ok", "bool")]


def rows_sheet(rows, columns=COLUMNS, name="Rows") -> RowSheet:
    return RowSheet(name, columns, iter(rows))  # an iterator, as the caller streams


def write_and_load(tmp_path: Path, report: Report):
    path = tmp_path / "report.xlsx"
    stats = write_report(path, report)
    return stats, load_workbook(path), path


def values(ws) -> list[list]:
    return [[c.value for c in row] for row in ws.iter_rows()]


def text_cells(wb) -> list:
    return [c for ws in wb for row in ws.iter_rows() for c in row if isinstance(c.value, str)]


def assert_no_formulas(wb, path: Path) -> None:
    assert [c.coordinate for ws in wb for row in ws.iter_rows() for c in row if c.data_type == "f"] == []
    with zipfile.ZipFile(path) as zf:  # and none in the XML, whatever a reader makes of it
        for name in zf.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in zf.read(name) and b"<f " not in zf.read(name)


def test_sheets_in_order_with_styled_frozen_filtered_headers(tmp_path):
    report = Report("Carbon report", [SummarySection("File", [("rows", 2)])],
                    rows_sheet([["a", 1.5, 2, dt.date(2024, 1, 2), True]] * 2),
                    error_sheet(iter([(7, "bad date")])))
    stats, wb, path = write_and_load(tmp_path, report)

    assert wb.sheetnames == ["Summary", "Rows", "Errors"] == stats.sheets
    assert stats.rows == {"Summary": 4, "Rows": 2, "Errors": 1}
    assert stats.bytes == path.stat().st_size
    for name, header in (("Rows", ["name", "amount", "count", "day", "ok"]), ("Errors", ["Row", "Error"])):
        ws = wb[name]
        assert values(ws)[0] == header
        for cell in ws[1]:
            assert cell.font.bold and cell.fill.fill_type == "solid"
            assert cell.fill.fgColor.rgb.endswith("DDEBF7")
        assert ws.freeze_panes == "A2"
        assert ws.auto_filter.ref == f"A1:{chr(ord('A') + len(header) - 1)}{ws.max_row}"
    assert wb["Summary"]["A1"].value == "Carbon report" and wb["Summary"]["A1"].font.bold


def test_values_keep_their_types(tmp_path):
    rows = [
        ["a", 1.5, 3, dt.date(2024, 1, 2), True],
        ["b", -2, 4.0, dt.datetime(2024, 1, 2, 13, 30), False],
        ["c", float("nan"), None, None, None],
        ["d", "-7.25", "12", "2024-03-04", "false"],  # as read back from a CSV chunk file
        ["e", "n/a", float("inf"), "not a date", "maybe"],  # kept as text rather than lost
    ]
    _, wb, _ = write_and_load(tmp_path, Report("t", rows=rows_sheet(rows)))
    got = values(wb["Rows"])[1:]

    assert got[0] == ["a", 1.5, 3, dt.datetime(2024, 1, 2), True]
    assert got[1] == ["b", -2, 4, dt.datetime(2024, 1, 2, 13, 30), False]
    assert type(got[1][2]) is int  # an integer column's whole float is an int
    assert got[2] == ["c", None, None, None, None]
    assert got[3] == ["d", -7.25, 12, dt.datetime(2024, 3, 4), False]
    assert got[4] == ["e", "n/a", "inf", "not a date", "maybe"]
    ws = wb["Rows"]
    assert ws["D2"].is_date and ws["D2"].number_format == "yyyy-mm-dd"
    assert ws["D3"].is_date and "h" in ws["D3"].number_format
    assert [ws.cell(2, i).data_type for i in range(1, 6)] == ["s", "n", "n", "d", "b"]


def test_text_column_keeps_numbers_as_text_and_odd_values_are_handled(tmp_path):
    aware = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    rows = [["007", 2 ** 60, 2 ** 53, aware, 1]]
    _, wb, _ = write_and_load(tmp_path, Report("t", rows=rows_sheet(rows)))
    # IDs beyond 2**53 would lose digits as an Excel number; an aware time is stored in UTC
    assert values(wb["Rows"])[1] == ["007", str(2 ** 60), 2 ** 53, dt.datetime(2024, 5, 1, 10, 0), 1]


def test_number_format_and_widths(tmp_path):
    columns = [Column("id"), Column("price", "number", number_format="#,##0.00"),
               Column("note", width=33), Column("long")]
    rows = [["x", 1234.5, "n", "y" * 40], ["x", "#N/A", "n", "z" * 500], ["x", None, "n", "w"]]
    _, wb, _ = write_and_load(tmp_path, Report("t", rows=rows_sheet(rows, columns)))
    ws = wb["Rows"]

    assert ws["B2"].value == 1234.5 and ws["B2"].number_format == "#,##0.00"
    assert ws["B3"].value == "#N/A" and ws["B3"].data_type == "s"
    widths = {k: v.width for k, v in ws.column_dimensions.items()}
    assert widths["C"] == 33
    assert excel_module.MIN_WIDTH <= widths["A"] < widths["B"] < widths["D"] == excel_module.MAX_WIDTH


def test_widths_come_from_the_first_rows_only(tmp_path, monkeypatch):
    monkeypatch.setattr(excel_module, "SAMPLE_ROWS", 3)
    rows = [["short"]] * 3 + [["x" * 50]]
    stats, wb, _ = write_and_load(tmp_path, Report("t", rows=rows_sheet(rows, [Column("c")])))
    assert stats.rows["Rows"] == 4 and values(wb["Rows"])[-1] == ["x" * 50]
    assert wb["Rows"].column_dimensions["A"].width < 20


@pytest.mark.parametrize("bad", DANGEROUS)
def test_formula_prefixes_are_neutralised_everywhere(tmp_path, bad):
    report = Report(
        bad,
        [SummarySection(bad, [(bad, bad), ("n", -3)]), SummaryTable(bad, [bad, "n"], [[bad, -4.5]])],
        rows_sheet([[bad, -1, -2, None, None], [bad, bad, bad, bad, bad]],
                   [Column(bad), *COLUMNS[1:]]),
        error_sheet(iter([(2, bad, bad)]), extra=[Column(bad)]),
    )
    _, wb, path = write_and_load(tmp_path, report)

    expected = "'" + bad.replace("\r", "\n")  # XML has no lone CR: it is written as LF
    found = [c for c in text_cells(wb) if c.value == expected]
    # title, 2 headings, label, value, table header and cell; the row sheet's
    # header and 6 cells; the errors sheet's header and 2 cells
    assert len(found) == 17 - 2 * (bad == "+1")  # "+1" in a number column is the number 1
    assert all(c.data_type == "s" for c in found)
    assert not [c.value for c in text_cells(wb) if c.value.startswith(FORMULA_PREFIXES)]
    # numbers, negative ones included, stay numbers
    assert wb["Summary"]["B5"].value == -3 and wb["Summary"]["B9"].value == -4.5
    assert values(wb["Rows"])[1][1:3] == [-1, -2]
    assert_no_formulas(wb, path)


def test_negative_text_in_number_columns_becomes_a_number_not_text(tmp_path):
    rows = [["-5", "-5", "-5", None, None]]
    _, wb, _ = write_and_load(tmp_path, Report("t", rows=rows_sheet(rows)))
    assert values(wb["Rows"])[1][:3] == ["'-5", -5, -5]


def test_error_value_text_stays_text(tmp_path):
    report = Report("t", [SummarySection("s", [("#REF!", "#DIV/0!")])],
                    rows_sheet([["#N/A", "#VALUE!", None, "#NAME?", "#NUM!"]]))
    _, wb, path = write_and_load(tmp_path, report)
    cells = [c for c in text_cells(wb) if c.value.startswith("#")]
    assert len(cells) == 6 and {c.data_type for c in cells} == {"s"}
    assert_no_formulas(wb, path)


def test_illegal_xml_characters_are_replaced(tmp_path):
    dirty = "a\x00b\x07c\x1bd\ud800e\ufffff"
    report = Report(dirty, [SummarySection(dirty, [(dirty, dirty)])],
                    rows_sheet([[dirty, None, None, dirty, dirty], ["tab\tand\nnewline", 1, 1, None, None]],
                               [Column(dirty), *COLUMNS[1:]], name="bad\x01name"))
    stats, wb, _ = write_and_load(tmp_path, report)

    clean = "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf"
    # title, heading, label, value, header, and 3 cells of the row
    assert sum(c.value == clean for c in text_cells(wb)) == 8
    assert values(wb[stats.sheets[1]])[2][0] == "tab\tand\nnewline"  # legal inside text


def test_sheet_names_are_made_valid_and_unique(tmp_path):
    report = Report("t", rows=rows_sheet([], name="summary"), errors=RowSheet("a/b:c*?[x]" * 5, [], iter([])))
    stats, wb, _ = write_and_load(tmp_path, report)
    assert stats.sheets == wb.sheetnames
    assert wb.sheetnames[:2] == ["Summary", "summary (2)"]
    assert len(wb.sheetnames[2]) == 31 and not set("/:*?[]") & set(wb.sheetnames[2])


@pytest.mark.parametrize(("rows", "parts"), [(0, [0]), (9, [9]), (18, [9, 9]), (25, [9, 9, 7])])
def test_row_sheets_split_at_the_row_limit(tmp_path, monkeypatch, rows, parts):
    monkeypatch.setattr(excel_module, "MAX_SHEET_ROWS", 10)  # header + 9 rows per sheet
    data = ([f"r{i}", i, i, None, None] for i in range(rows))
    errors = error_sheet((i, f"e{i}") for i in range(rows))
    stats, wb, _ = write_and_load(tmp_path, Report("t", rows=RowSheet("Rows", COLUMNS, data), errors=errors))

    names = ["Rows"] + [f"Rows ({n})" for n in range(2, len(parts) + 1)]
    error_names = ["Errors"] + [f"Errors ({n})" for n in range(2, len(parts) + 1)]
    assert wb.sheetnames == stats.sheets == ["Summary", *names, *error_names]
    assert [stats.rows[n] for n in names] == parts == [stats.rows[n] for n in error_names]
    written = []
    for name in names:
        ws = wb[name]
        assert ws.max_row <= 10 and ws.freeze_panes == "A2"
        assert values(ws)[0] == [c.header for c in COLUMNS]  # the header repeated
        written += [row[0] for row in values(ws)[1:]]
    assert written == [f"r{i}" for i in range(rows)]


def test_rows_are_streamed_not_gathered(monkeypatch):
    """No more than the sample is ever read ahead of what has been written."""
    monkeypatch.setattr(excel_module, "MAX_SHEET_ROWS", 4)
    monkeypatch.setattr(excel_module, "SAMPLE_ROWS", 2)
    appended = []
    real_append = WriteOnlyWorksheet.append
    monkeypatch.setattr(WriteOnlyWorksheet, "append",
                        lambda ws, row: (appended.append(ws.title), real_append(ws, row))[1])
    ahead = []

    def source():
        for i in range(7):
            rows_sheets = [title for title in appended if title.startswith("Rows")]
            written = len(rows_sheets) - len(set(rows_sheets))  # less a header per sheet
            ahead.append(i - written)  # rows pulled before this one and not yet written
            yield [str(i)]

    stats = write_report(io.BytesIO(), Report("t", rows=RowSheet("Rows", [Column("c")], source())))
    assert ahead == [0, 1, 0, 0, 0, 0, 0]
    assert stats.rows == {"Summary": 1, "Rows": 3, "Rows (2)": 3, "Rows (3)": 1}


def test_short_rows_end_in_empty_cells_and_extra_values_are_dropped(tmp_path):
    columns = [Column("a"), Column("b", "number")]
    _, wb, _ = write_and_load(tmp_path, Report("t", rows=rows_sheet([["x"], ["y", 2, "extra"]], columns)))
    assert values(wb["Rows"]) == [["a", "b"], ["x", None], ["y", 2]]


def test_writes_to_a_binary_file_object():
    buffer = io.BytesIO()
    stats = write_report(buffer, Report("t", [SummarySection("s", [("a", math.pi)])]))
    assert stats.bytes is None and stats.sheets == ["Summary"]
    wb = load_workbook(io.BytesIO(buffer.getvalue()))
    assert wb["Summary"]["B4"].value == math.pi


def test_unknown_column_kind_is_refused():
    with pytest.raises(ValueError, match="kind"):
        Column("x", "money")


def _soffice_csvs(path: Path, tmp_path: Path) -> dict[str, list[list[str]]]:
    """Every sheet as LibreOffice exports it to CSV, by sheet name, without
    trailing empty fields and lines."""
    out = tmp_path / "csv"
    profile = tmp_path / "lo-profile"  # a private profile: parallel runs do not share a lock
    subprocess.run([SOFFICE, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
                    "--convert-to", CSV_EVERY_SHEET,
                    "--outdir", str(out), str(path)], check=True, capture_output=True, timeout=120)
    sheets = {}
    for csv_path in out.glob(f"{path.stem}-*.csv"):
        rows = [row for row in csv.reader(io.StringIO(csv_path.read_text("utf-8"), newline=""))]
        while rows and not any(rows[-1]):
            rows.pop()
        sheets[csv_path.stem.removeprefix(f"{path.stem}-")] = [_trim(row) for row in rows]
    return sheets


def _trim(row: list[str]) -> list[str]:
    while row and row[-1] == "":
        row = row[:-1]
    return row


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (libreoffice-calc-nogui) is not installed")
def test_libreoffice_opens_the_report_and_sees_what_was_written(tmp_path):
    report = Report(
        "Report =1",
        [SummarySection("File", [("rows", 3), ("mean", -1.5), ("formula", "=2*3")]),
         SummaryTable("Totals", ["scope", "kg"], [["@scope1", 10], ["-scope2", -2.5]])],
        rows_sheet([["+a", -1, 1, dt.date(2024, 1, 2), True],
                    ["=cmd|' /C calc'!A0", float("nan"), "2", "2024-02-03", "no"],
                    ["#N/A", 2.5, None, None, None]]),
        error_sheet(iter([(4, "-bad")])),
    )
    path = tmp_path / "report.xlsx"
    write_report(path, report)

    sheets = _soffice_csvs(path, tmp_path)
    assert sorted(sheets) == ["Errors", "Rows", "Summary"]
    assert sheets["Summary"] == [
        ["Report =1"], [], ["File"], ["rows", "3"], ["mean", "-1.5"], ["formula", "'=2*3"], [],
        ["Totals"], ["scope", "kg"], ["'@scope1", "10"], ["'-scope2", "-2.5"],
    ]
    assert sheets["Rows"] == [
        ["name", "amount", "count", "day", "ok"],
        ["'+a", "-1", "1", "2024-01-02", "TRUE"],
        ["'=cmd|' /C calc'!A0", "", "2", "2024-02-03", "FALSE"],
        ["#N/A", "2.5"],
    ]
    assert sheets["Errors"] == [["Row", "Error"], ["4", "'-bad"]]

