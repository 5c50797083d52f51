"""plan_csv: byte ranges that cover the file exactly, cut only between
records, and number rows as a spreadsheet does; checked against Python's csv
module on random files, random chunk sizes and random read blocks."""
from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.jobs.model import InputError
from chalicelib.sources.csv_plan import plan_csv, sniff_delimiter
from chalicelib.sources.table import parse_csv_chunk
from tests.support.files import csv_text, rfc_field

DELIMITERS = [",", ";", "\t", "|"]
# Anything a cell may hold, including the characters that matter to CSV.
_SPECIAL = st.sampled_from(['"', ",", ";", "\t", "|", "\n", "\r\n", "\r", " ", '""', "é", "€", "日", "😀"])


def _cells(codec: str):
    plain = st.text(st.characters(codec=codec, exclude_characters="\x00"), max_size=6)
    return st.lists(st.one_of(plain, _SPECIAL), max_size=4).map("".join)


@st.composite
def csv_files(draw):
    """(data, encoding, delimiter): RFC 4180 text with random quoting, blank
    lines, CRLF or LF, with or without a final line end."""
    encoding = draw(st.sampled_from(["utf-8", "cp1252"]))
    delimiter = draw(st.sampled_from(DELIMITERS))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    width = draw(st.integers(1, 4))
    cell = _cells("utf-8" if encoding == "utf-8" else "cp1252")
    if encoding == "cp1252":
        cell = cell.filter(lambda s: _encodable(s, "cp1252"))
    # Header names: plain words (often repeated) or any text with a letter in it.
    name = st.one_of(st.sampled_from(["a", "a.1", "b", "Unnamed: 0"]),
                     st.text("abcxyz_", min_size=1, max_size=5),
                     cell.filter(lambda c: any(ch.isalnum() for ch in c)))
    header = draw(st.lists(name, min_size=width, max_size=width))
    rows = draw(st.lists(st.lists(cell, min_size=width, max_size=width), max_size=25))
    lines = [_record(draw, header, delimiter)]
    for row in rows:
        if draw(st.integers(0, 9)) == 0:
            lines.append("")  # a blank line
        lines.append(_record(draw, row, delimiter))
    text = newline.join(lines)
    if draw(st.booleans()):
        text += newline
    return text.encode(encoding), encoding, delimiter


def _record(draw, row, delimiter):
    if len(row) == 1 and row[0] == "":
        return '""'
    return delimiter.join(rfc_field(v, delimiter, force_quotes=draw(st.integers(0, 4)) == 0) for v in row)


def _encodable(s: str, encoding: str) -> bool:
    try:
        s.encode(encoding)
        return True
    except UnicodeEncodeError:
        return False


def blocks_of(data: bytes, sizes: list[int]) -> list[bytes]:
    """The data cut into blocks of the given sizes (cycled), with an empty
    block now and then, as a stream reader may hand them out."""
    out, pos, i = [], 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        i += 1
        out.append(data[pos:pos + size])
        if size % 5 == 0:
            out.append(b"")
        pos += size
    return out


def csv_records(text: str, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def expected_rows(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """(row number, cells padded to the header) for every record with a value,
    numbered as a spreadsheet: the header is 1, each record counts once."""
    records = csv_records(text, delimiter)
    width = len(records[0])
    return [(number, rec + [""] * (width - len(rec)))
            for number, rec in enumerate(records[1:], start=2) if any(rec)]


def check_plan(data: bytes, encoding: str, delimiter: str, chunk_bytes: int, sizes: list[int]) -> None:
    text = data.decode(encoding)
    records = csv_records(text, delimiter)
    plan = plan_csv(blocks_of(data, sizes), encoding, chunk_bytes, delimiter)

    # The header is the first record, the ranges tile [header_end, size).
    assert csv_records(plan.header, delimiter) == [records[0]]
    header_end = len(data) - sum(r.end - r.start for r in plan.ranges)
    assert data[:header_end].decode(encoding).rstrip("\r\n") == plan.header
    pos = header_end
    for r in plan.ranges:
        assert r.start == pos and r.end > r.start
        pos = r.end
    assert pos == len(data)
    assert plan.data_rows == len(records) - 1
    assert not plan.unterminated_quote

    got: list[tuple[int, list[str]]] = []
    columns: dict[str, list[str]] = {}
    next_row = 2
    for i, r in enumerate(plan.ranges):
        piece = data[r.start:r.end]
        # Every cut but the last falls right after a record's line end...
        if i < len(plan.ranges) - 1:
            assert piece.endswith(b"\n")
        # ...so each range alone reads as whole records: none starts inside a
        # quoted field, and the first row numbers add up.
        alone = csv_records(piece.decode(encoding), delimiter)
        assert r.first_row == next_row
        next_row += len(alone)
        # Each range is at least chunk_bytes long unless it is the last.
        if i < len(plan.ranges) - 1:
            assert r.end - r.start >= chunk_bytes
        parsed = parse_csv_chunk(piece, encoding, delimiter, plan.header, r.first_row)
        assert parsed.rejected == []
        # every chunk names the columns alike, and no two the same
        names = list(parsed.frame.columns)
        assert len(names) == len(records[0]) == len(set(names))
        assert names == columns.setdefault("names", names)
        got.extend(zip(parsed.row_numbers.tolist(), parsed.frame.values.tolist(), strict=True))
    assert next_row - 2 == len(records) - 1
    assert got == expected_rows(text, delimiter)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files(), st.one_of(st.integers(1, 24), st.integers(1, 400)),
       st.lists(st.integers(1, 300), min_size=1, max_size=5))
def test_ranges_match_the_csv_module(file, chunk_bytes, block_sizes):
    data, encoding, delimiter = file
    check_plan(data, encoding, delimiter, chunk_bytes, block_sizes)


@settings(max_examples=60, deadline=None)
@given(csv_files(), st.integers(1, 3))
def test_one_byte_blocks_and_huge_chunks(file, block):
    data, encoding, delimiter = file
    check_plan(data, encoding, delimiter, len(data) + 1_000_000, [block])
    check_plan(data, encoding, delimiter, 1, [len(data) + 10])


def test_embedded_newlines_count_once_and_crlf():
    data = (b'id,note\r\n1,"two\r\nlines"\r\n2,plain\r\n\r\n3,"a,b ""q"""\r\n4,"x\ny"')
    plan = plan_csv([data], "utf-8", 1)
    assert plan.header == "id,note"
    assert [(r.first_row, data[r.start:r.end]) for r in plan.ranges] == [
        (2, b'1,"two\r\nlines"\r\n'), (3, b"2,plain\r\n"), (4, b"\r\n"),
        (5, b'3,"a,b ""q"""\r\n'), (6, b'4,"x\ny"'),
    ]
    assert plan.data_rows == 5
    rows = []
    for r in plan.ranges:
        p = parse_csv_chunk(data[r.start:r.end], "utf-8", ",", plan.header, r.first_row)
        rows += zip(p.row_numbers.tolist(), p.frame.values.tolist(), strict=True)
    assert rows == [(2, ["1", "two\r\nlines"]), (3, ["2", "plain"]), (5, ["3", 'a,b "q"']),
                    (6, ["4", "x\ny"])]


def test_quoted_header_with_newline():
    data = b'"first\nname",age\nann,3\n'
    plan = plan_csv([data[:3], data[3:]], "utf-8", 1000)
    assert plan.header == '"first\nname",age'
    assert [(r.start, r.end, r.first_row) for r in plan.ranges] == [(len(data) - 6, len(data), 2)]
    p = parse_csv_chunk(data[-6:], "utf-8", ",", plan.header, 2)
    assert list(p.frame.columns) == ["first\nname", "age"]


def test_utf8_bom_is_not_part_of_the_header():
    data = "\ufeffname,city\nZoë,Köln\n".encode()
    plan = plan_csv([data], "utf-8-sig", 100)
    assert plan.header == "name,city"
    assert plan.data_rows == 1


@pytest.mark.parametrize("data, rows, ranges", [
    (b"a,b\n", 0, []),
    (b"a,b", 0, []),
    (b"a,b\r\n", 0, []),
    (b"a,b\n1,2", 1, [(4, 7, 2)]),
    (b"a,b\n\n\n", 2, [(4, 6, 2)]),
])
def test_small_files(data, rows, ranges):
    plan = plan_csv([data], "utf-8", 2)
    assert plan.data_rows == rows
    assert [(r.start, r.end, r.first_row) for r in plan.ranges] == ranges


def test_empty_file_and_empty_header_are_refused():
    with pytest.raises(InputError, match="empty"):
        plan_csv([], "utf-8", 10)
    with pytest.raises(InputError, match="empty"):
        plan_csv([b"", b""], "utf-8", 10)
    with pytest.raises(InputError, match="header.*empty"):
        plan_csv([b"\n1,2\n"], "utf-8", 10)


def test_a_never_ending_header_is_refused():
    blocks = (b"x" * 65536 for _ in range(20))
    with pytest.raises(InputError, match="header line is longer than 1 MiB"):
        plan_csv(blocks, "utf-8", 10)


def test_header_that_is_not_valid_text_is_named():
    with pytest.raises(InputError, match="header line is not valid utf-8"):
        plan_csv([b"na\xffme,b\n1,2\n"], "utf-8", 10)


def test_an_unclosed_quote_is_reported():
    data = b'a,b\n1,"open\n2,3\n4,5\n'
    plan = plan_csv([data], "utf-8", 1)
    assert plan.unterminated_quote
    # Nothing after the open quote is cut: the rest of the file is one range
    # holding one (unfinished) record.
    assert [(r.start, r.end, r.first_row) for r in plan.ranges] == [(4, len(data), 2)]
    assert plan.data_rows == 1
    # The same after a few good records, with the cut before the open quote.
    data = b'a,b\n1,2\n3,4\n5,"open\n6,7\n'
    plan = plan_csv([data], "utf-8", 1)
    assert plan.unterminated_quote
    assert [(r.start, r.first_row) for r in plan.ranges] == [(4, 2), (8, 3), (12, 4)]
    assert plan.data_rows == 3


@pytest.mark.parametrize("sample, expected", [
    ("a,b,c\n1,2,3\n4,5,6\n", ","),
    ("a;b;c\n1,5;2,5;3\n4;5;6\n", ";"),
    ("a\tb\tc\n1\t2\t3\n", "\t"),
    ("a|b|c\n1|2|3\n4|5|6\n", "|"),
    ('name;note\n"x";"a, b, c"\n"y";"d, e"\n', ";"),
    ("only\n1\n2\n", ","),
    ("", ","),
])
def test_sniff_delimiter(sample, expected):
    assert sniff_delimiter(sample) == expected


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(DELIMITERS), st.integers(2, 6), st.integers(3, 30), st.data())
def test_sniffed_delimiter_is_the_one_written(delimiter, width, n, data):
    """Plain cells (words, numbers, decimals with commas in a ; file): the
    sniffer finds the delimiter the file was written with."""
    word = st.text("abcdefghij", min_size=1, max_size=8)
    number = st.integers(-10**6, 10**6).map(str)
    decimal = st.floats(-1e5, 1e5, allow_nan=False).map(
        lambda x: f"{x:.2f}".replace(".", "," if delimiter == ";" else "."))
    cell = st.one_of(word, number, decimal)
    rows = [data.draw(st.lists(word, min_size=width, max_size=width, unique=True))]
    rows += [data.draw(st.lists(cell, min_size=width, max_size=width)) for _ in range(n)]
    text = csv_text(rows, delimiter=delimiter)
    assert sniff_delimiter(text) == delimiter


@pytest.mark.parametrize("block_size", [1, 7, 4096])
def test_a_stray_quote_inside_an_unquoted_field_is_a_plain_character(block_size):
    # `5'11"` is not RFC 4180, but pandas and the csv module read it as text;
    # the splitter must too, or every cut after it would land in the wrong place.
    rows = [f'{i},5\'{i % 12}",note {i}' if i % 3 else f'{i},"quoted, {i}",plain' for i in range(1, 41)]
    data = ("id,height,note\n" + "\n".join(rows) + "\n").encode()
    plan = plan_csv(blocks_of(data, [block_size]), "utf-8", 64)
    assert len(plan.ranges) >= 10
    assert plan.data_rows == 40
    expected = list(csv.reader(io.StringIO(data.decode(), newline="")))[1:]
    got = []
    for r in plan.ranges:
        parsed = parse_csv_chunk(data[r.start:r.end], "utf-8", ",", plan.header, r.first_row)
        assert parsed.rejected == []
        rows = parsed.frame.itertuples(index=False)
        got += [(int(n), list(row)) for n, row in zip(parsed.row_numbers, rows, strict=True)]
    assert got == [(i + 2, row) for i, row in enumerate(expected)]


def test_lines_ended_by_cr_alone_are_named():
    with pytest.raises(InputError, match=r"carriage return \(CR\) alone"):
        plan_csv([b"id,qty\r1,2\r3,4\r"], "utf-8", 10)
    blocks = (b"a,b\r" * 16384 for _ in range(20))  # past the 1 MiB a header may take
    with pytest.raises(InputError, match=r"carriage return \(CR\) alone"):
        plan_csv(blocks, "utf-8", 10)
    # a one-line file ending in CR is only a header
    assert plan_csv([b"id,qty\r"], "utf-8", 10).data_rows == 0


def test_more_columns_than_excel_has_are_refused():
    at_most = ",".join(f"c{i}" for i in range(16_384))
    assert plan_csv([f"{at_most}\n{at_most}\n".encode()], "utf-8", 1 << 20).data_rows == 1
    wider = ",".join(f"c{i}" for i in range(20_000))
    with pytest.raises(InputError, match=r"the header has 20,000 columns; Sluice reads at most 16,384"):
        plan_csv([f"{wider}\n1\n".encode()], "utf-8", 1 << 20)
    # quoted delimiters are not columns
    quoted = ",".join(f'"a,{i}"' for i in range(9000))
    assert plan_csv([f"{quoted}\n1\n".encode()], "utf-8", 1 << 20).data_rows == 1


def test_a_cr_inside_a_quoted_field_is_no_line_end():
    plan = plan_csv([b'"a\rb",c'], "utf-8", 10)
    assert (plan.header, plan.data_rows) == ('"a\rb",c', 0)


@pytest.mark.parametrize("block", [1, 2, 4096])
def test_a_quoted_first_field_right_after_a_byte_order_mark_quotes(block):
    data = '\ufeff"first\nname",age\nann,3\nbob,4\n'.encode()
    plan = plan_csv([data[i:i + block] for i in range(0, len(data), block)], "utf-8-sig", 1)
    assert plan.header == '\ufeff"first\nname",age'.encode().decode("utf-8-sig")
    assert [(r.first_row, data[r.start:r.end]) for r in plan.ranges] == [(2, b"ann,3\n"), (3, b"bob,4\n")]
