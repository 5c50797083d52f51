"""parse_csv_chunk: one chunk's bytes to rows of text, every row named by its
spreadsheet number, bad rows rejected by number and the rest kept."""
from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.jobs.model import InputError
from chalicelib.sources.table import parse_csv_chunk
from tests.support.files import rfc_record


def rows_of(parsed):
    return list(zip(parsed.row_numbers.tolist(), parsed.frame.values.tolist(), strict=True))


def test_plain_rows_keep_text_exactly():
    p = parse_csv_chunk(b"1, two ,003\n4.50,,x\n", "utf-8", ",", "a,b,c", 2)
    assert list(p.frame.columns) == ["a", "b", "c"]
    assert rows_of(p) == [(2, ["1", " two ", "003"]), (3, ["4.50", "", "x"])]
    assert p.rejected == []


def test_first_row_offsets_the_numbers():
    p = parse_csv_chunk(b"1,2\n3,4\n", "utf-8", ",", "a,b", 1001)
    assert p.row_numbers.tolist() == [1001, 1002]


def test_chunk_that_carries_its_own_header():
    p = parse_csv_chunk(b"a,b\n1,2\n", "utf-8", ",", None, 2)
    assert list(p.frame.columns) == ["a", "b"]
    assert rows_of(p) == [(2, ["1", "2"])]


def test_too_many_fields_is_rejected_with_its_row_and_the_rest_kept():
    data = b"1,2,3\n4,5,6,7\n8,9,10\n11,12,13,14,15\n16,17,18\n"
    p = parse_csv_chunk(data, "utf-8", ",", "a,b,c", 2)
    assert rows_of(p) == [(2, ["1", "2", "3"]), (4, ["8", "9", "10"]), (6, ["16", "17", "18"])]
    assert p.rejected == [
        {"row": 3, "error": "row 3 has 4 fields but the header has 3"},
        {"row": 5, "error": "row 5 has 5 fields but the header has 3"},
    ]


def test_too_many_fields_on_the_first_data_row():
    p = parse_csv_chunk(b"1,2,3\n4,5\n", "utf-8", ",", "a,b", 10)
    assert rows_of(p) == [(11, ["4", "5"])]
    assert p.rejected == [{"row": 10, "error": "row 10 has 3 fields but the header has 2"}]


def test_rejected_rows_with_embedded_newlines_and_blank_lines_are_numbered_right():
    data = b'"x\ny",1\n\n1,2,3\n"p\nq",4\n'
    p = parse_csv_chunk(data, "utf-8", ",", "a,b", 2)
    assert rows_of(p) == [(2, ["x\ny", "1"]), (5, ["p\nq", "4"])]
    assert p.rejected == [{"row": 4, "error": "row 4 has 3 fields but the header has 2"}]


def test_too_few_fields_are_padded_as_missing():
    p = parse_csv_chunk(b"1\n2,3\n4,5,6\n", "utf-8", ",", "a,b,c", 2)
    assert rows_of(p) == [(2, ["1", "", ""]), (3, ["2", "3", ""]), (4, ["4", "5", "6"])]
    assert p.rejected == []


def test_blank_lines_are_dropped_but_numbering_is_kept():
    data = b"\n1,2\n\n\n3,4\n,\n5,6\n\n"
    p = parse_csv_chunk(data, "utf-8", ",", "a,b", 2)
    assert rows_of(p) == [(3, ["1", "2"]), (6, ["3", "4"]), (8, ["5", "6"])]


def test_blank_lines_in_crlf_text():
    p = parse_csv_chunk(b"1,2\r\n\r\n3,4\r\n", "utf-8", ",", "a,b", 2)
    assert rows_of(p) == [(2, ["1", "2"]), (4, ["3", "4"])]


def test_whitespace_only_row_is_a_row():
    p = parse_csv_chunk(b"  \n1\n", "utf-8", ",", "a", 2)
    assert rows_of(p) == [(2, ["  "]), (3, ["1"])]


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_delimiters(delimiter):
    d = delimiter.encode()
    data = b"1" + d + b'"has ' + d + b' inside"' + d + b"1,5\n2" + d + d + b"x\n"
    header = delimiter.join(["n", "text", "dec"])
    p = parse_csv_chunk(data, "utf-8", delimiter, header, 2)
    assert list(p.frame.columns) == ["n", "text", "dec"]
    if delimiter == ",":  # 1,5 is two fields here: the row is one too long
        assert rows_of(p) == [(3, ["2", "", "x"])]
        assert p.rejected[0]["row"] == 2
    else:
        assert rows_of(p) == [(2, ["1", f"has {delimiter} inside", "1,5"]), (3, ["2", "", "x"])]


def test_quotes_escaped_quotes_and_embedded_line_ends():
    data = b'"a ""quoted"" word","line1\r\nline2"\n"",","\n'
    p = parse_csv_chunk(data, "utf-8", ",", "a,b", 2)
    assert rows_of(p) == [(2, ['a "quoted" word', "line1\r\nline2"]), (3, ["", ","])]


@pytest.mark.parametrize("encoding, text", [
    ("utf-8", "Zoë,日本語\n"),
    ("cp1252", "“smart”,€5\n"),
    ("latin-1", "façade,½\n"),
])
def test_encodings(encoding, text):
    p = parse_csv_chunk(text.encode(encoding), encoding, ",", "a,b", 2)
    assert rows_of(p) == [(2, text.strip().split(","))]


def test_undecodable_bytes_reject_their_row_and_keep_the_others():
    data = b"1,ok\n2,ok\n3,caf\xe9\n4,ok\n"
    p = parse_csv_chunk(data, "utf-8", ",", "a,b", 10)
    assert rows_of(p) == [(10, ["1", "ok"]), (11, ["2", "ok"]), (13, ["4", "ok"])]
    assert p.rejected == [{"row": 12, "error": "row 12 has bytes that are not valid utf-8 text "
                                               "(byte 0xe9); save the file as UTF-8"}]


def test_undecodable_bytes_after_an_embedded_newline_name_the_record_not_the_line():
    data = b'1,"two\nlines"\n2,"three\nmore\nlines"\n3,\xff\n'
    p = parse_csv_chunk(data, "utf-8", ",", "a,b", 2)
    assert [r["row"] for r in p.rejected] == [4]
    assert [n for n, _ in rows_of(p)] == [2, 3]


def test_a_quote_that_never_closes_rejects_its_row_and_keeps_the_ones_before():
    data = b'1,ok\n\n2,ok,extra\n3,"never closed\n4,x\n5,y\n'
    p = parse_csv_chunk(data, "utf-8", ",", "a,b", 5)
    assert rows_of(p) == [(5, ["1", "ok"])]
    assert p.rejected == [
        {"row": 7, "error": "row 7 has 3 fields but the header has 2"},
        {"row": 8, "error": 'row 8: a quoted field starts here but its closing quote (") is missing, '
                           "so this row and every line after it could not be read"},
    ]


def test_a_quote_that_never_closes_with_nothing_before_fails_the_chunk():
    with pytest.raises(InputError, match=r'^row 5: a quoted field starts here but its closing quote'):
        parse_csv_chunk(b'\n"open,and,more\n1,2\n', "utf-8", ",", "a,b", 4)


def test_a_stray_quote_inside_a_field_is_text():
    p = parse_csv_chunk(b'1,5\'11"\n2,x\n', "utf-8", ",", "a,b", 2)
    assert rows_of(p) == [(2, ["1", "5'11\""]), (3, ["2", "x"])]


def test_duplicate_and_empty_header_names_are_made_unique():
    p = parse_csv_chunk(b"1,2,3,4\n", "utf-8", ",", "a,a,,b", 2)
    assert list(p.frame.columns) == ["a", "a.1", "Unnamed: 2", "b"]
    lenient = parse_csv_chunk(b"1,2,3,4\n1,2,3,4,5\n", "utf-8", ",", "a,a,,b", 2)
    assert list(lenient.frame.columns) == ["a", "a.1", "Unnamed: 2", "b"]
    assert rows_of(lenient) == [(2, ["1", "2", "3", "4"])]


@pytest.mark.parametrize("header, names", [
    ("a,a,a.1", ["a", "a.2", "a.1"]),
    ("a.1,a,a", ["a.1", "a", "a.2"]),
    (",Unnamed: 0,x", ["Unnamed: 0", "Unnamed: 0.1", "x"]),
    ("a,a,a", ["a", "a.1", "a.2"]),
])
def test_column_names_are_unique_and_the_same_on_both_paths(header, names):
    fast = parse_csv_chunk(b"1,2,3\n", "utf-8", ",", header, 2)
    careful = parse_csv_chunk(b"1,2,3\n1,2,3,4\n", "utf-8", ",", header, 2)
    assert careful.rejected  # the second chunk took the csv-module path
    assert list(fast.frame.columns) == list(careful.frame.columns) == names


def test_empty_chunk():
    p = parse_csv_chunk(b"", "utf-8", ",", "a,b", 2)
    assert len(p.frame) == 0 and list(p.frame.columns) == ["a", "b"]


# -- ragged files against the csv module -------------------------------------------------

_CELL = st.lists(st.sampled_from(["a", "Zoë", " ", '"', ",", ";", "\n", "\r\n", "1.5", ""]),
                 max_size=3).map("".join)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([",", ";", "\t", "|"]), st.integers(1, 4),
       st.lists(st.tuples(st.integers(0, 6), st.booleans()), max_size=20), st.data())
def test_ragged_rows_against_the_csv_module(delimiter, width, shapes, data):
    """Rows of any length: the ones no longer than the header are kept
    (padded), the longer ones are rejected by row number, blank ones dropped;
    numbers count every record once, as the csv module reads them."""
    lines = []
    for length, blank in shapes:
        if blank:
            lines.append("")
            continue
        cells = data.draw(st.lists(_CELL, min_size=length, max_size=length))
        lines.append(rfc_record(cells, delimiter) if cells else "")
    body = "\n".join(lines) + ("\n" if lines and data.draw(st.booleans()) else "")
    header = delimiter.join(f"h{i}" for i in range(width))
    parsed = parse_csv_chunk(body.encode(), "utf-8", delimiter, header, 2)

    records = list(csv.reader(io.StringIO(body, newline=""), delimiter=delimiter))
    keep = [(n, r + [""] * (width - len(r))) for n, r in enumerate(records, start=2)
            if len(r) <= width and any(r)]
    reject = [n for n, r in enumerate(records, start=2) if len(r) > width]
    assert rows_of(parsed) == keep
    assert [r["row"] for r in parsed.rejected] == reject
    for r in parsed.rejected:
        assert r["error"].startswith(f"row {r['row']} has ")


def test_a_nul_byte_rejects_its_row_and_keeps_the_others():
    data = b"1,ok\n2,o\x00k\n3,ok\n" + bytes(40)  # and the NUL padding a crashed writer leaves
    p = parse_csv_chunk(data, "utf-8", ",", "a,b", 2)
    assert rows_of(p) == [(2, ["1", "ok"]), (4, ["3", "ok"])]
    assert [r["row"] for r in p.rejected] == [3, 5]
    assert p.rejected[0]["error"] == ("row 3 holds a NUL byte (0x00), which text never holds: the file "
                                      "may be damaged here")
