"""Excel workbooks (made with openpyxl) read row by row and rewritten as CSV
chunk files whose rows keep the sheet's own row numbers."""
from __future__ import annotations

import datetime as dt

import defusedxml.ElementTree
import openpyxl
import openpyxl.xml.functions
import pytest

from chalicelib.jobs.model import InputError
from chalicelib.sources.excel import iter_xlsx_rows, write_csv_chunks
from chalicelib.sources.table import parse_csv_chunk
from tests.corpus.make_corpus import replace_members
from tests.support.files import corrupt_member, plain_zip, with_dimension, xlsx_bytes


@pytest.fixture
def book(tmp_path):
    """Write xlsx bytes to a file and return its path."""
    counter = iter(range(1000))

    def write(data: bytes) -> str:
        path = tmp_path / f"book{next(counter)}.xlsx"
        path.write_bytes(data)
        return str(path)

    return write


def chunks_of(path, rows_per_chunk, sheet=None):
    """Run write_csv_chunks and parse each chunk file as a worker would:
    returns (chunk files, data rows, [(row number, cells)])."""
    files = []
    count, data_rows = write_csv_chunks(iter_xlsx_rows(path, sheet), rows_per_chunk,
                                        lambda i, data, first: files.append((i, data, first)))
    assert [f[0] for f in files] == list(range(count))
    rows = []
    for _, data, first_row in files:
        parsed = parse_csv_chunk(data, "utf-8", ",", None, first_row)
        assert parsed.rejected == []
        rows += zip(parsed.row_numbers.tolist(), parsed.frame.values.tolist(), strict=True)
    return files, data_rows, rows


def test_cell_values_as_text(book):
    path = book(xlsx_bytes([
        ["when", "stamp", "n", "f", "flag", "t", "note"],
        [dt.datetime(2024, 1, 15), dt.datetime(2024, 1, 15, 10, 30), 42, 1.5, True, dt.time(10, 30), None],
        [dt.date(2023, 12, 31), dt.datetime(2024, 2, 29, 0, 0, 5), -7.0, 1e-5, False, None, "a, \"b\"\nc"],
    ]))
    # A row may stop at its last cell with a value; the chunk writer pads it.
    assert [(n, (cells + [""] * 7)[:7]) for n, cells in iter_xlsx_rows(path)] == [
        (1, ["when", "stamp", "n", "f", "flag", "t", "note"]),
        (2, ["2024-01-15", "2024-01-15T10:30:00", "42", "1.5", "true", "10:30:00", ""]),
        (3, ["2023-12-31", "2024-02-29T00:00:05", "-7", "1e-05", "false", "", "a, \"b\"\nc"]),
    ]


def test_empty_rows_in_the_middle_keep_the_sheet_numbers(book):
    path = book(xlsx_bytes([
        ["id", "name"], [1, "a"], [], [], [4, "d"], [None, None], [6, "f"], [], [8, "h"],
    ]))
    for per_chunk in (1, 2, 3, 100):
        files, data_rows, rows = chunks_of(path, per_chunk)
        assert rows == [(2, ["1", "a"]), (5, ["4", "d"]), (7, ["6", "f"]), (9, ["8", "h"])], per_chunk
        assert data_rows == 4
        assert len(files) == -(-8 // per_chunk)
        assert all(data.startswith(b"id,name\n") for _, data, _ in files)


def test_chunk_files_start_at_their_first_row(book):
    path = book(xlsx_bytes([["x"]] + [[i] for i in range(2, 12)]))
    files, data_rows, rows = chunks_of(path, 4)
    assert [first for _, _, first in files] == [2, 6, 10]
    assert rows == [(i, [str(i)]) for i in range(2, 12)]
    assert data_rows == 10


def test_table_lower_down_the_sheet(book):
    path = book(xlsx_bytes(cells={"B3": "name", "C3": "qty", "B4": "x", "C4": 1, "B6": "y", "C6": 2}))
    _, data_rows, rows = chunks_of(path, 10)
    assert rows == [(4, ["", "x", "1"]), (6, ["", "y", "2"])]
    assert data_rows == 2


@pytest.mark.parametrize("ref", ["A1", None, "A1:B2"])
def test_a_wrong_or_missing_dimension_does_not_lose_rows(book, ref):
    rows = [["id", "v"]] + [[i, i * 2] for i in range(1, 50)]
    path = book(with_dimension(xlsx_bytes(rows), ref))
    _, data_rows, got = chunks_of(path, 7)
    assert data_rows == 49
    assert got == [(i + 1, [str(i), str(2 * i)]) for i in range(1, 50)]


def test_header_width_rules(book):
    # Trailing empty header cells do not make columns; short rows are padded.
    path = book(xlsx_bytes([["a", "b", None, None], [1], [1, 2, None, None]]))
    files, _, rows = chunks_of(path, 10)
    assert files[0][1].startswith(b"a,b\n")
    assert rows == [(2, ["1", ""]), (3, ["1", "2"])]


def test_sheet_by_name_and_position(book):
    path = book(xlsx_bytes(sheets={
        "First": [["a"], [1]],
        "Second": [["b"], [2], [3]],
        "2023": [["c"], [4]],
    }))
    assert list(iter_xlsx_rows(path)) == [(1, ["a"]), (2, ["1"])]
    assert list(iter_xlsx_rows(path, "Second")) == [(1, ["b"]), (2, ["2"]), (3, ["3"])]
    assert list(iter_xlsx_rows(path, 2)) == [(1, ["b"]), (2, ["2"]), (3, ["3"])]
    assert list(iter_xlsx_rows(path, "2")) == [(1, ["b"]), (2, ["2"]), (3, ["3"])]
    assert list(iter_xlsx_rows(path, 1)) == [(1, ["a"]), (2, ["1"])]
    # A sheet whose name is digits is found by its name.
    assert list(iter_xlsx_rows(path, "2023")) == [(1, ["c"]), (2, ["4"])]


def test_missing_sheet_lists_the_sheets(book):
    path = book(xlsx_bytes(sheets={"Sales": [["a"], [1]], "Costs": [["b"], [2]]}))
    with pytest.raises(InputError) as err:
        list(iter_xlsx_rows(path, "Budget"))
    assert str(err.value) == ("options.sheet 'Budget' is not in the workbook; "
                              "its sheets are ['Sales', 'Costs']")
    with pytest.raises(InputError, match=r"options.sheet is 3 but the workbook has 2 sheet\(s\): "
                                         r"\['Sales', 'Costs'\]"):
        list(iter_xlsx_rows(path, 3))
    with pytest.raises(InputError, match="options.sheet is 0"):
        list(iter_xlsx_rows(path, "0"))


def test_a_chart_sheet_first_is_skipped_by_default(book, tmp_path):
    import openpyxl
    from openpyxl.chart import BarChart, Reference

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    ws.append(["n"])
    ws.append([1])
    chart = BarChart()
    chart.add_data(Reference(ws, min_col=1, min_row=1, max_row=2))
    wb.create_chartsheet("Chart", 0).add_chart(chart)
    path = str(tmp_path / "chart.xlsx")
    wb.save(path)
    assert list(iter_xlsx_rows(path)) == [(1, ["n"]), (2, ["1"])]
    with pytest.raises(InputError, match="'Chart' is a chart sheet"):
        list(iter_xlsx_rows(path, 1))


def test_truncated_workbook(book):
    data = xlsx_bytes([["a", "b"]] + [[i, f"x{i}"] for i in range(500)])
    for keep in (len(data) // 2, len(data) - 20):
        with pytest.raises(InputError, match="the Excel file is damaged or truncated"):
            list(iter_xlsx_rows(book(data[:keep])))


def test_damage_found_while_reading_is_an_input_error(book):
    data = xlsx_bytes([["id", "text"]] + [[i, f"value number {i} " * 3] for i in range(3000)])
    for where in (0.05, 0.9):
        path = book(corrupt_member(data, "xl/worksheets/sheet1.xml", where))
        with pytest.raises(InputError, match="the Excel file"):
            list(iter_xlsx_rows(path))


def test_a_zip_that_is_not_a_workbook(book):
    with pytest.raises(InputError, match="not an Excel workbook"):
        list(iter_xlsx_rows(book(plain_zip())))


def test_empty_sheet_and_header_only(book):
    with pytest.raises(InputError, match="the sheet is empty"):
        chunks_of(book(xlsx_bytes([])), 10)
    with pytest.raises(InputError, match="the sheet is empty"):
        chunks_of(book(xlsx_bytes([[], [None, None]])), 10)
    files, data_rows, rows = chunks_of(book(xlsx_bytes([["a", "b"]])), 10)
    assert (files, data_rows, rows) == ([], 0, [])
    files, data_rows, rows = chunks_of(book(xlsx_bytes([["a", "b"], [], [None]])), 10)
    assert data_rows == 0 and rows == []


def test_a_value_a_million_rows_down_costs_no_million_rows_of_chunks(book):
    rows = [["id", "v"]] + [[i, i * 2] for i in range(1, 6)]
    path = book(xlsx_bytes(rows, cells={"B1048576": "far", "XFD1048576": "past the table"}))
    files, data_rows, got = chunks_of(path, 100_000)
    # The run of empty rows is not written: the last chunk starts at the far row.
    assert [first for _, _, first in files] == [2, 1048576]
    assert sum(data.count(b"\n") for _, data, _ in files) == 2 + 6
    assert data_rows == 6
    # Cells right of the header's last column are not the table's.
    assert got[-1] == (1048576, ["", "far"])


def test_short_runs_of_empty_rows_are_written_to_keep_the_numbers(book, monkeypatch):
    monkeypatch.setattr("chalicelib.sources.excel.SKIPPED_BLANK_ROWS", 3)
    path = book(xlsx_bytes([["id"], [1], [], [], [4], [], [], [], [8]]))
    files, data_rows, got = chunks_of(path, 2)
    assert got == [(2, ["1"]), (5, ["4"]), (9, ["8"])]
    assert [first for _, _, first in files] == [2, 4, 9]  # rows 3-4 written, 6-8 skipped


def test_a_header_wider_than_excel_allows_is_refused(book, monkeypatch):
    monkeypatch.setattr("chalicelib.sources.excel.MAX_COLUMNS", 3)
    with pytest.raises(InputError, match="the header has 4 columns; Sluice reads at most 3"):
        chunks_of(book(xlsx_bytes([["a", "b", "c", "d"], [1, 2, 3, 4]])), 10)


def test_openpyxl_parses_with_defusedxml():
    assert openpyxl.DEFUSEDXML is True
    # Sheets and shared strings are streamed with iterparse, which must be defusedxml's.
    assert openpyxl.xml.functions.iterparse is defusedxml.ElementTree.iterparse


def test_entities_the_prolog_check_cannot_see_are_refused_by_the_parser(book, monkeypatch):
    # Behind 20 KB of comment, the DTD is past what check_xlsx_archive reads
    # of each part: defusedxml, under openpyxl, must refuse it all the same.
    laughs = ('<!DOCTYPE worksheet [<!ENTITY lol0 "lol">'
              + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)) + "]>")
    sheet = ('<?xml version="1.0"?><!--' + "x" * 20_000 + "-->" + laughs
             + '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             '<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>')
    data = replace_members(xlsx_bytes([["a"], [1]]), {"xl/worksheets/sheet1.xml": sheet.encode()})
    with pytest.raises(InputError, match=r"read safely: its XML declares entities \(EntitiesForbidden"):
        list(iter_xlsx_rows(book(data)))
