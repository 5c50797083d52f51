"""Random CSVs split by the dispatcher into random numbers of chunks yield
exactly the rows Python's csv module reads: in order, each once, numbered as
a spreadsheet numbers them (the header is row 1), blank records skipped but
counted, records with more fields than the header rejected by their number.

The files hold what makes CSV hard: quoted fields with delimiters, quotes and
CR, LF or CRLF inside, empty fields, short records, blank lines, any unicode,
a UTF-8 byte order mark or none, a last line end or none, and each of the
delimiters the planner knows. They go through the dispatcher itself
(dispatch_job on the in-memory pipeline, the file handed over in blocks of
random sizes, as S3 streams it) and each chunk message through
parse_csv_chunk exactly as a worker reads it; and, fewer of them, end to end
through the profile processor, whose counts must be the csv module's.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.jobs.dispatch import dispatch_job, new_job, store_upload
from chalicelib.jobs.model import ChunkTask, JobStatus
from chalicelib.processors.profile import MISSING_TOKENS
from chalicelib.sources.table import parse_csv_chunk
from tests.support.files import rfc_field
from tests.support.memory_pipeline import drain, memory_pipeline

DELIMITERS = [",", ";", "\t", "|"]
# Derandomized: the same examples on every run and every machine, no database.
PROPERTY = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
END_TO_END = settings(PROPERTY, max_examples=40)

# Text a cell may hold: any character but NUL, surrogates and the C0/C1
# controls other than tab, CR and LF (a file full of control bytes is
# refused as binary before it is split, on purpose), and, often, the
# characters that matter to CSV.
_CHARACTERS = st.characters(exclude_categories=["Cs"], exclude_characters="".join(
    chr(c) for c in [*range(0, 32), *range(127, 160)] if chr(c) not in "\t\r\n"))
_SPECIAL = st.sampled_from(['"', '""', ",", ";", "\t", "|", "\n", "\r", "\r\n", " ", "", "é", "€",
                            "日本", "😀", "\u2028", "\ufeff"])
CELL = st.lists(st.one_of(st.text(_CHARACTERS, max_size=5), _SPECIAL), max_size=4).map("".join)
NAME = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6)


@dataclasses.dataclass(frozen=True)
class CsvFile:
    data: bytes
    delimiter: str
    encoding: str  # how `data` is written: utf-8, utf-8-sig (a BOM) or utf-16

    @property
    def text(self) -> str:
        return self.data.decode("utf-8-sig" if self.encoding.startswith("utf-8") else self.encoding)


@st.composite
def csv_files(draw, encodings=("utf-8", "utf-8-sig"), names=CELL, long_rows: bool = True,
              unique_names: bool = False) -> CsvFile:
    delimiter = draw(st.sampled_from(DELIMITERS))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    width = draw(st.integers(1, 5))
    encoding = draw(st.sampled_from(encodings))
    header = draw(st.lists(names.filter(lambda n: any(c.isalnum() for c in n)), min_size=width,
                           max_size=width, unique=unique_names))
    lines = [_record(draw, header, delimiter)]
    for _ in range(draw(st.integers(0, 30))):
        shape = draw(st.integers(0, 19))
        if shape == 0:
            lines.append("")  # a blank line
            continue
        cells = width
        if shape == 1:
            cells = draw(st.integers(1, width))  # a short record, padded with ""
        elif shape == 2 and long_rows:
            cells = width + draw(st.integers(1, 2))  # too many fields: rejected
        lines.append(_record(draw, draw(st.lists(CELL, min_size=cells, max_size=cells)), delimiter))
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    return CsvFile(text.encode(encoding), delimiter, encoding)


def _record(draw, row: list[str], delimiter: str) -> str:
    if len(row) == 1 and row[0] == "":
        return '""'  # not a blank line
    return delimiter.join(rfc_field(v, delimiter, force_quotes=draw(st.integers(0, 4)) == 0) for v in row)


@dataclasses.dataclass
class Expected:
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (row number, cells padded to the header)
    rejected: list[int]  # row numbers of records with more fields than the header
    records: int  # records after the header, blank ones included


def read_with_csv_module(file: CsvFile) -> Expected:
    records = list(csv.reader(io.StringIO(file.text, newline=""), delimiter=file.delimiter))
    header, width = records[0], len(records[0])
    rows, rejected = [], []
    for number, record in enumerate(records[1:], start=2):
        if len(record) > width:
            rejected.append(number)
        elif any(record):
            rows.append((number, record + [""] * (width - len(record))))
    return Expected(header, rows, rejected, len(records) - 1)


class StreamedInBlocks:
    """The blob store, with iter_blocks handing the file over in blocks of
    the given sizes (cycled), as a stream from S3 may."""

    def __init__(self, inner, sizes: list[int]):
        self._inner = inner
        self._sizes = sizes

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def iter_blocks(self, key: str, block_size: int) -> Iterator[bytes]:
        data = b"".join(self._inner.iter_blocks(key, block_size))
        pos = i = 0
        while pos < len(data):
            size = self._sizes[i % len(self._sizes)]
            yield data[pos:pos + size]
            pos, i = pos + size, i + 1


def dispatched_chunks(file: CsvFile, chunk_bytes: int, block_sizes: list[int]):
    """(job, chunk tasks) as the dispatcher leaves them, in chunk order."""
    pipe = memory_pipeline(chunk_bytes=chunk_bytes)
    pipe = dataclasses.replace(pipe, blobs=StreamedInBlocks(pipe.blobs, block_sizes))
    job = new_job(pipe, "random.csv", "profile", {"delimiter": file.delimiter})
    store_upload(pipe, job, file.data, "text/csv")
    dispatch_job(pipe, job.job_id)
    tasks = sorted((ChunkTask.from_message(m) for m in pipe.work_queue.drain()), key=lambda t: t.index)
    return pipe, pipe.store.get_job(job.job_id), tasks


@PROPERTY
@given(csv_files(), st.one_of(st.integers(1, 40), st.integers(41, 600), st.just(1 << 30)),
       st.lists(st.integers(1, 200), min_size=1, max_size=4))
def test_the_dispatchers_chunks_hold_exactly_the_rows_the_csv_module_reads(file, chunk_bytes, block_sizes):
    expected = read_with_csv_module(file)
    pipe, job, tasks = dispatched_chunks(file, chunk_bytes, block_sizes)
    if expected.records == 0:
        # (Why it fails is test_a_header_alone_is_refused_for_having_no_rows.)
        assert job.status == JobStatus.FAILED
        return
    assert job.status == JobStatus.PROCESSING and job.chunks_total == len(tasks) >= 1
    assert [t.index for t in tasks] == list(range(len(tasks)))

    rows, rejected, next_row, end = [], [], 2, None
    for task in tasks:
        src = task.source
        # The chunks tile the file after the header, each starting where the
        # one before ended, and number their first rows consecutively.
        assert end is None or src.start == end
        assert src.first_row == next_row
        data = pipe.blobs.read_range(src.key, src.start, src.end)
        parsed = parse_csv_chunk(data, src.encoding, src.delimiter, src.header, src.first_row)
        assert len(parsed.frame.columns) == len(expected.header)
        cells = parsed.frame.itertuples(index=False, name=None)
        rows += [(int(n), list(r)) for n, r in zip(parsed.row_numbers, cells, strict=True)]
        rejected += [r["row"] for r in parsed.rejected]
        next_row += _records_in(data, file.delimiter)
        end = src.end
    assert end in (None, len(file.data))
    assert next_row - 2 == expected.records
    assert rows == expected.rows  # in order, each once, numbered alike
    assert rejected == expected.rejected


def _records_in(data: bytes, delimiter: str) -> int:
    return len(list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=delimiter)))


@END_TO_END
@given(csv_files(encodings=("utf-8", "utf-8-sig", "utf-16"), names=NAME, long_rows=False, unique_names=True),
       st.one_of(st.integers(1, 60), st.integers(61, 600)))
def test_the_profile_of_a_split_file_counts_what_the_csv_module_reads(file, chunk_bytes):
    expected = read_with_csv_module(file)
    pipe = memory_pipeline(chunk_bytes=chunk_bytes)
    job = new_job(pipe, "random.csv", "profile", {"delimiter": file.delimiter})
    store_upload(pipe, job, file.data, "text/csv")
    dispatch_job(pipe, job.job_id)
    drain(pipe)
    job = pipe.store.get_job(job.job_id)
    if not expected.rows:
        assert job.status == JobStatus.FAILED and "no data rows" in job.error
        return
    assert job.status == JobStatus.COMPLETED, job.error
    assert job.chunks_done == job.chunks_total >= 1 and job.chunks_failed == 0
    assert job.rows_done == len(expected.rows)
    result = json.loads(pipe.blobs.get(job.result_key))
    assert result["row_count"] == len(expected.rows)
    assert result["column_count"] == len(expected.header)
    missing = {name: sum(1 for _, row in expected.rows if row[i].strip().lower() in MISSING_TOKENS)
               for i, name in enumerate(expected.header)}
    got = result["quality_issues"]["missing_values"]
    assert {name: got.get(name, {}).get("count", 0) for name in expected.header} == missing


def _rows_of(file: CsvFile) -> tuple[list[tuple[int, list[str]]], str | None]:
    """The rows a job's chunks hold, read as workers read them, and the
    job's error if the dispatcher failed it."""
    pipe, job, tasks = dispatched_chunks(file, 1, [4096])
    rows = []
    for task in tasks:
        src = task.source
        data = pipe.blobs.read_range(src.key, src.start, src.end)
        parsed = parse_csv_chunk(data, src.encoding, src.delimiter, src.header, src.first_row)
        cells = parsed.frame.itertuples(index=False, name=None)
        rows += [(int(n), list(r)) for n, r in zip(parsed.row_numbers, cells, strict=True)]
    return rows, job.error


@pytest.mark.parametrize("data", [
    '\ufeff"x,""",y\n1,2\n3,4\n'.encode(),  # its first field is x,"
    '\ufeff"first\nname",age\nann,3\nbob,4\n'.encode(),
])
def test_a_quoted_first_field_after_a_bom_is_read_as_the_csv_module_reads(data):
    file = CsvFile(data, ",", "utf-8-sig")
    assert _rows_of(file) == (read_with_csv_module(file).rows, None)


def test_a_header_alone_is_refused_for_having_no_rows():
    _, error = _rows_of(CsvFile(b'"a\rb",c', ",", "utf-8"))
    assert "no data rows" in error
