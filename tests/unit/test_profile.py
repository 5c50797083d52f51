"""The profile processor (seed 004): schema inference, statistics, missing and
invalid values, checked against figures computed independently, and the same
result whether a file arrives as 1 chunk or 500."""
from __future__ import annotations

import datetime as dt
import decimal
import json
import statistics
import warnings
from fractions import Fraction

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chalicelib.jobs.model import InputError
from chalicelib.processors import FinishContext, TableChunk, fold, get_processor
from tests.support.files import MISSING_SPELLINGS, csv_bytes, mixed_rows

PROFILE = get_processor("profile")
MISSING = {"", "na", "n/a", "null", "none", "nan"}


def column_csv(name: str, values: list[str]) -> bytes:
    """The values under `name`, beside a key column so that no row is blank
    (a row with no value at all is a blank line, not a missing value)."""
    return csv_bytes([[name, "key"]] + [[v, f"k{i}"] for i, v in enumerate(values)])


def one_column(profile, values, **options):
    summary = profile(column_csv("c", values), options=options).summary
    return (summary["schema"]["c"], summary["statistics"].get("c"),
            summary["quality_issues"]["missing_values"].get("c"),
            summary["quality_issues"]["invalid_values"].get("c"))


# -- schema inference ------------------------------------------------------------

@pytest.mark.parametrize("values, kind", [
    (["1", "-2", "+3", "007", " 42 "], "int"),
    (["1.5", "2", "3e2", "-0.25"], "float"),
    (["1.0", "2.0"], "float"),
    (["2024-01-15", "2024-02-01", "2023-12-31"], "date"),
    (["true", "False", "YES", "no"], "bool"),
    (["alpha", "beta", "12 apples"], "string"),
    (["", "NA", "null"], "string"),
    (["1", "2.5", "x", "y"], "string"),
])
def test_schema_kinds(profile, values, kind):
    assert one_column(profile, values)[0] == kind


@pytest.mark.parametrize("value, expected", [
    ("2024-01-15", "2024-01-15"),
    ("2024-01-15T10:00:00", "2024-01-15T10:00:00"),
    ("2024-01-15 10:30", "2024-01-15T10:30:00"),
    ("01/15/2024", "2024-01-15"),
    ("15/01/2024", "2024-01-15"),
    ("15.01.2024", "2024-01-15"),
    ("Jan 15, 2024", "2024-01-15"),
    ("January 15, 2024", "2024-01-15"),
    ("15 January 2024", "2024-01-15"),
    ("15-Jan-2024", "2024-01-15"),
    ("2024/01/15", "2024-01-15"),
    ("2024-1-5", "2024-01-05"),
    ("2024-01-15T10:00:00Z", "2024-01-15T10:00:00"),
])
def test_written_forms_of_dates(profile, value, expected):
    kind, stats, missing, invalid = one_column(profile, [value, value])
    assert kind == "date"
    assert stats == {"min": expected, "max": expected, "count": 2}
    assert missing is None and invalid is None


def test_dayfirst_decides_ambiguous_dates(profile):
    values = ["01/02/2024", "03/04/2024", "15/01/2024"]
    _, us, _, _ = one_column(profile, values)
    _, eu, _, _ = one_column(profile, values, dayfirst=True)
    assert us == {"min": "2024-01-02", "max": "2024-03-04", "count": 3}
    assert eu == {"min": "2024-01-15", "max": "2024-04-03", "count": 3}
    _, eu2, _, _ = one_column(profile, ["02/01/2024", "12/25/2024"], dayfirst="true")
    assert eu2 == {"min": "2024-01-02", "max": "2024-12-25", "count": 2}


def test_type_threshold(profile):
    nine = [str(i) for i in range(9)] + ["x"]
    kind, stats, _, invalid = one_column(profile, nine)
    assert kind == "int" and stats["count"] == 9
    assert invalid == {"count": 1, "percentage": 10.0, "expected_type": "int",
                       "examples": [{"row": 11, "value": "x"}]}
    assert one_column(profile, nine[1:] + ["y"])[0] == "string"
    assert one_column(profile, nine, type_threshold=1)[0] == "string"
    assert one_column(profile, nine, type_threshold="0.85")[0] == "int"


def test_dates_with_a_number_among_them(profile):
    values = [f"2024-01-{d:02d}" for d in range(1, 20)] + ["17"]
    kind, stats, _, invalid = one_column(profile, values)
    assert kind == "date"
    assert stats == {"min": "2024-01-01", "max": "2024-01-19", "count": 19}
    assert invalid["count"] == 1 and invalid["examples"] == [{"row": 21, "value": "17"}]


def test_bool_statistics(profile):
    kind, stats, missing, _ = one_column(profile, ["true", "TRUE", "yes", "no", "False", ""])
    assert kind == "bool"
    assert stats == {"count": 5, "true": 3, "false": 2}
    assert missing == {"count": 1, "percentage": 16.67}


# -- statistics against pandas and statistics -------------------------------------

@pytest.mark.parametrize("values", [
    [12.5, 7.25, 100.0, -3.75, 0.1, 0.2, 0.3],
    [1e15, 1.0, -1e15, 3.0, 1e-3],
    [123456789.123, 123456789.124, 123456789.125],  # tiny spread, large mean
    [5.5],
])
def test_float_statistics_match_pandas(profile, values):
    kind, stats, _, _ = one_column(profile, [repr(v) for v in values])
    assert kind == "float"
    series = pd.Series(values)
    assert stats["count"] == len(values)
    assert stats["min"] == pytest.approx(series.min(), rel=1e-11)
    assert stats["max"] == pytest.approx(series.max(), rel=1e-11)
    assert stats["sum"] == pytest.approx(float(sum(Fraction(v) for v in values)), rel=1e-11, abs=1e-12)
    assert stats["avg"] == pytest.approx(float(sum(Fraction(v) for v in values) / len(values)),
                                         rel=1e-11, abs=1e-12)
    if len(values) > 1:
        assert stats["std"] == pytest.approx(statistics.stdev(values), rel=1e-9)
        assert stats["std"] == pytest.approx(series.std(ddof=1), rel=1e-6)
    else:
        assert stats["std"] is None


def test_int_statistics_are_exact(profile):
    values = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, -100, 2**40]
    kind, stats, _, _ = one_column(profile, [str(v) for v in values])
    assert kind == "int"
    assert stats["min"] == -100 and isinstance(stats["min"], int)
    assert stats["max"] == 2**40 and isinstance(stats["max"], int)
    assert stats["sum"] == sum(values) and isinstance(stats["sum"], int)
    assert stats["count"] == len(values)
    assert stats["avg"] == pytest.approx(statistics.fmean(values), rel=1e-12)
    assert stats["std"] == pytest.approx(statistics.stdev(values), rel=1e-11)


def test_std_has_no_cancellation_error(profile):
    # Values around 1e9 with a spread of 0.001: the naive sum of squares
    # loses every digit of the variance; exact sums keep it.
    values = [1e9 + i / 1000 for i in range(50)]
    _, stats, _, _ = one_column(profile, [repr(v) for v in values])
    assert stats["std"] == pytest.approx(statistics.stdev(values), rel=1e-9)


# -- missing and invalid values --------------------------------------------------------

def test_missing_spellings(profile):
    values = ["", "   ", "NA", "N/A", "null", "None", "NaN", "n/a", "NULL", "nan", "5", "6"]
    kind, stats, missing, invalid = one_column(profile, values)
    assert kind == "int"
    assert stats["count"] == 2
    assert missing == {"count": 10, "percentage": 83.33}
    assert invalid is None


def test_values_that_are_not_missing(profile):
    values = ["0", "-", "none of them", "?"] + ["1"] * 36
    kind, stats, missing, invalid = one_column(profile, values)
    assert kind == "int" and stats["count"] == 37
    assert missing is None
    assert invalid["count"] == 3
    assert [e["value"] for e in invalid["examples"]] == ["-", "none of them", "?"]


def test_invalid_values_counts_percentages_examples(profile):
    values = [str(i) for i in range(1, 98)] + ["abc", "12b", "1,5"]
    kind, _, _, invalid = one_column(profile, values)
    assert kind == "int"
    assert invalid == {
        "count": 3, "percentage": 3.0, "expected_type": "int",
        "examples": [{"row": 99, "value": "abc"}, {"row": 100, "value": "12b"},
                     {"row": 101, "value": "1,5"}],
    }


def test_percentages_have_two_decimals(profile):
    values = ["x"] + [str(i) for i in range(1, 30)] + [""] * 2
    _, _, missing, invalid = one_column(profile, values)
    assert missing == {"count": 2, "percentage": round(200 / 32, 2)}
    assert invalid["percentage"] == round(100 / 32, 2) == 3.12


def test_examples_keep_the_first_three_rows_in_file_order(profile):
    values = [str(i) for i in range(100)]
    for row in (10, 40, 70, 90):
        values[row] = f"bad{row}"
    for chunk_bytes in (1, 7, 50, 10**6):
        data = column_csv("c", values)
        summary = profile(data, chunk_bytes=chunk_bytes).summary
        assert summary["quality_issues"]["invalid_values"]["c"]["examples"] == [
            {"row": 12, "value": "bad10"}, {"row": 42, "value": "bad40"}, {"row": 72, "value": "bad70"}]


def test_long_example_values_are_cut(profile):
    values = ["1"] * 20 + ["x" * 500]
    _, _, _, invalid = one_column(profile, values)
    assert invalid["examples"] == [{"row": 22, "value": "x" * 100}]


# -- the seed 004 summary -----------------------------------------------------------

def seed_example_rows():
    rows = [["name", "age", "salary", "join_date"]]
    for i in range(100):
        salary = "" if i in (10, 60) else f"{45000 + i * 1000:.2f}"
        rows.append([f"person {i}", str(25 + i % 41), salary, f"2020-{1 + i % 12:02d}-{1 + i % 28:02d}"])
    return rows


def test_seed_004_example_shape(profile):
    rows = seed_example_rows()
    out = profile(csv_bytes(rows), filename="sales_data.csv")
    s = out.summary
    assert s["file_name"] == "sales_data.csv"
    assert s["row_count"] == 100
    assert s["schema"] == {"name": "string", "age": "int", "salary": "float", "join_date": "date"}
    ages = [int(r[1]) for r in rows[1:]]
    salaries = [float(r[2]) for r in rows[1:] if r[2]]
    assert s["statistics"]["age"] == {
        "min": min(ages), "max": max(ages), "avg": pytest.approx(statistics.fmean(ages)),
        "count": 100, "sum": sum(ages), "std": pytest.approx(statistics.stdev(ages)),
    }
    assert s["statistics"]["salary"] == {
        "min": 45000.0, "max": 144000.0, "avg": pytest.approx(statistics.fmean(salaries)),
        "count": 98, "sum": pytest.approx(sum(salaries)), "std": pytest.approx(statistics.stdev(salaries)),
    }
    assert s["statistics"]["join_date"] == {"min": "2020-01-01", "max": "2020-12-28", "count": 100}
    assert "name" not in s["statistics"]
    assert s["quality_issues"] == {
        "total_rows": 100,
        "has_issues": True,
        "missing_values": {"salary": {"count": 2, "percentage": 2.0}},
        "invalid_values": {},
    }
    # The same figures land in processed/<name>_summary.json and the record.
    assert json.loads(out.files["processed/sales_data_summary.json"]) == s
    assert out.record == {k: s[k] for k in ("row_count", "schema", "statistics", "quality_issues")}


def test_a_clean_file_has_no_issues(profile):
    s = profile(csv_bytes([["a", "b"], ["1", "x"], ["2", "y"]])).summary
    assert s["quality_issues"] == {"total_rows": 2, "has_issues": False,
                                   "missing_values": {}, "invalid_values": {}}


def test_header_only_is_an_input_error():
    with pytest.raises(InputError, match="^the file has a header but no data rows$"):
        PROFILE.finish(None, FinishContext(job_id="j", filename="x.csv", options={}))
    empty = {"rows": 0, "columns": {}}
    with pytest.raises(InputError, match="no data rows"):
        PROFILE.finish(empty, FinishContext(job_id="j", filename="x.csv", options={}))


# -- options ----------------------------------------------------------------------------

def test_validate_options():
    assert PROFILE.validate_options({}) == {"type_threshold": 0.9, "dayfirst": False}
    assert PROFILE.validate_options({"dayfirst": "false"})["dayfirst"] is False
    assert PROFILE.validate_options({"dayfirst": "yes"})["dayfirst"] is True
    assert PROFILE.validate_options({"dayfirst": 1})["dayfirst"] is True
    kept = PROFILE.validate_options({"delimiter": ";", "encoding": "latin-1", "sheet": "Data"})
    assert (kept["delimiter"], kept["encoding"], kept["sheet"]) == (";", "latin-1", "Data")
    assert PROFILE.validate_options({"encoding": "utf-16"})["encoding"] == "utf-16"
    assert PROFILE.validate_options({"sheet": 2})["sheet"] == 2


@pytest.mark.parametrize("options, message", [
    ({"type_threshold": "lots"}, "options.type_threshold must be a number"),
    ({"type_threshold": 0.2}, "between 0.5 and 1"),
    ({"dayfirst": "maybe"}, "options.dayfirst must be true or false"),
    ({"encoding": "klingon"}, "not a known text encoding"),
    ({"encoding": "utf-32"}, "not supported"),
    ({"encoding": "cp037"}, "not supported"),
    ({"delimiter": ",,"}, "options.delimiter must be one character"),
    ({"delimiter": '"'}, "options.delimiter must be one character"),
    ({"sheet": True}, "options.sheet must be"),
    ({"sheet": [1]}, "options.sheet must be"),
])
def test_bad_options_are_named(options, message):
    with pytest.raises(InputError, match=message):
        PROFILE.validate_options(options)


# -- 1 chunk or many: the same result ---------------------------------------------------

def oracle(header, rows):
    """The expected summary figures, computed from the generated text without
    the processor's code: Python's float/int/strptime, statistics, Fraction."""
    total = len(rows)
    forms = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%m/%d/%Y", "%d.%m.%Y", "%b %d, %Y", "%d %B %Y", "%Y/%m/%d"]

    def as_date(v):
        for f in forms:
            try:
                return dt.datetime.strptime(v, f)
            except ValueError:
                pass
        return None

    out = {}
    for j, name in enumerate(header):
        cells = [(i + 2, r[j].strip()) for i, r in enumerate(rows)]
        present = [(row, v) for row, v in cells if v.lower() not in MISSING]
        out[name] = {"missing": total - len(present), "present": present}
        if name in ("id", "qty", "late"):
            good = [int(v) for _, v in present if v.lstrip("-").isdigit()]
            out[name]["valid"] = good
            out[name]["bad"] = [(row, v) for row, v in present if not v.lstrip("-").isdigit()]
        elif name in ("price", "score"):
            good, bad = [], []
            for row, v in present:
                try:
                    good.append(float(v))
                except ValueError:
                    bad.append((row, v))
            out[name]["valid"], out[name]["bad"] = good, bad
        elif name == "joined":
            good = [(row, as_date(v)) for row, v in present]
            out[name]["valid"] = [d for _, d in good if d is not None]
            out[name]["bad"] = [(row, v) for (row, v), (_, d) in zip(present, good, strict=True) if d is None]
        elif name == "active":
            out[name]["valid"] = [v.lower() in ("true", "yes") for _, v in present]
            out[name]["bad"] = []
        else:
            out[name]["valid"], out[name]["bad"] = [], []
    return out


def check_against_oracle(summary, header, rows):
    expected = oracle(header, rows)
    total = len(rows)
    assert summary["row_count"] == total
    assert summary["column_count"] == len(header)
    assert summary["schema"] == {"id": "int", "qty": "int", "price": "float", "joined": "date",
                                 "active": "bool", "name": "string", "late": "int", "score": "float",
                                 "empty": "string"}
    for name in ("id", "qty", "late", "price", "score"):
        values = expected[name]["valid"]
        stats = summary["statistics"][name]
        exact = sum(Fraction(v) for v in values)
        assert stats["count"] == len(values)
        assert stats["min"] == pytest.approx(min(values), rel=1e-11)
        assert stats["max"] == pytest.approx(max(values), rel=1e-11)
        assert stats["sum"] == pytest.approx(float(exact), rel=1e-11)
        assert stats["avg"] == pytest.approx(float(exact / len(values)), rel=1e-11)
        assert stats["std"] == pytest.approx(statistics.stdev(values), rel=1e-9)
        assert stats["std"] == pytest.approx(pd.Series(values, dtype="float64").std(ddof=1), rel=1e-6)
    dates = expected["joined"]["valid"]
    lo, hi = min(dates), max(dates)
    fmt = lambda d: d.date().isoformat() if d.time() == dt.time(0) else d.isoformat()  # noqa: E731
    assert summary["statistics"]["joined"] == {"min": fmt(lo), "max": fmt(hi), "count": len(dates)}
    flags = expected["active"]["valid"]
    assert summary["statistics"]["active"] == {"count": len(flags), "true": sum(flags),
                                               "false": len(flags) - sum(flags)}
    assert set(summary["statistics"]) == {"id", "qty", "late", "price", "score", "joined", "active"}

    issues = summary["quality_issues"]
    assert issues["total_rows"] == total and issues["has_issues"] is True
    assert issues["missing_values"] == {
        name: {"count": e["missing"], "percentage": round(100 * e["missing"] / total, 2)}
        for name, e in expected.items() if e["missing"]
    }
    kinds = summary["schema"]
    assert issues["invalid_values"] == {
        name: {"count": len(e["bad"]), "percentage": round(100 * len(e["bad"]) / total, 2),
               "expected_type": kinds[name],
               "examples": [{"row": row, "value": v} for row, v in e["bad"][:3]]}
        for name, e in expected.items() if e["bad"]
    }
    # The late column's invalid values are only in the last 5% of the file.
    assert all(ex["row"] > total * 0.95 for ex in issues["invalid_values"]["late"]["examples"])


@pytest.fixture(scope="module")
def mixed_file():
    header, rows = mixed_rows(2000, seed=4)
    return header, rows, csv_bytes([header] + rows)


def test_mixed_file_matches_independent_figures(profile, mixed_file):
    header, rows, data = mixed_file
    check_against_oracle(profile(data).summary, header, rows)


def test_mixed_file_same_result_in_1_or_500_chunks(run_job, mixed_file):
    header, rows, data = mixed_file
    results = {}
    for chunk_bytes, shuffle in ((1_000_000, None), (20_000, None), (len(data) // 510, 5)):
        ran = run_job(data, chunk_bytes=chunk_bytes, shuffle=shuffle)
        assert ran.job.status.value == "completed", ran.job.error
        results[ran.job.chunks_total] = ran
    assert sorted(results)[0] == 1 and sorted(results)[-1] >= 450  # about 500 chunks
    first = results[1]
    check_against_oracle(first.result, header, rows)
    summary_key = "processed/data_summary.json"
    for chunks, ran in results.items():
        assert ran.raw_result == first.raw_result, f"{chunks} chunks"
        assert ran.pipe.blobs.get(summary_key) == first.pipe.blobs.get(summary_key)
        record = {k: v for k, v in ran.record.items()
                  if k not in ("job_id", "upload_timestamp", "processed_timestamp")}
        first_record = {k: v for k, v in first.record.items()
                        if k not in ("job_id", "upload_timestamp", "processed_timestamp")}
        assert record == first_record


def test_one_chunk_per_row_gives_the_same_result(run_job):
    header, rows = mixed_rows(120, seed=9)
    data = csv_bytes([header] + rows)
    whole = run_job(data, chunk_bytes=1_000_000)
    per_row = run_job(data, chunk_bytes=1)
    assert per_row.job.chunks_total == 120 and whole.job.chunks_total == 1
    assert per_row.raw_result == whole.raw_result


def test_types_are_decided_from_all_rows(profile):
    # The first 80% of "code" are numbers, the rest words: 80% < 90%, so it is
    # a string column whichever chunk is seen first; "n" turns float at the end.
    n = 400
    rows = [["code", "n"]] + [[str(i) if i < n * 0.8 else f"C-{i}", str(i) if i < n - 1 else "0.5"]
                              for i in range(n)]
    data = csv_bytes(rows)
    outs = [profile(data, chunk_bytes=cb) for cb in (1 << 20, 300, 40)]
    assert [o.chunks for o in outs][0] == 1 and outs[-1].chunks > 50
    for out in outs:
        assert out.summary["schema"] == {"code": "string", "n": "float"}
        assert out.summary["quality_issues"]["invalid_values"] == {}
        assert out.summary == outs[0].summary


def float_column_stats(values, bounds):
    """The statistics of one float column processed in the given chunks."""
    texts = [repr(v) for v in values]
    partials = []
    for i, (a, b) in enumerate(bounds):
        frame = pd.DataFrame({"x": texts[a:b]}, dtype=object)
        chunk = TableChunk(i, frame, pd.Series(range(a + 2, b + 2)), {})
        partials.append(json.loads(json.dumps(PROFILE.process(chunk, lambda k, b: None).partial)))
    return PROFILE.finish(fold(PROFILE, partials), FinishContext("j", "f.csv", {})).result["statistics"]["x"]


@pytest.mark.parametrize("values, figures", [
    # exact sum 1e-06: a float running sum says 0
    ([1e12, 1e-6, -1e12], {"sum": 1e-06, "avg": 3.33333333333e-07}),
    # exact sum 5: float sums say 3, and the mean moved with the chunking
    ([1e16, 1.0, 1.0, -1e16, 3.0], {"sum": 5.0, "avg": 1.0}),
])
def test_cancelling_values_are_summed_exactly(values, figures):
    n = len(values)
    for bounds in ([(0, n)], [(i, i + 1) for i in range(n)], [(0, 2), (2, n)]):
        stats = float_column_stats(values, bounds)
        assert {k: stats[k] for k in figures} == figures, bounds


def test_std_of_a_tight_cluster_does_not_depend_on_the_chunking():
    values = [1e9 + i / 1000 for i in range(50)]
    whole = float_column_stats(values, [(0, 50)])
    for bounds in ([(i, i + 1) for i in range(50)], [(0, 7), (7, 31), (31, 50)]):
        assert float_column_stats(values, bounds) == whole
    assert whole["std"] == pytest.approx(statistics.stdev(values), rel=1e-11)


@settings(max_examples=60, deadline=None)
@example(values=[0.0, 8.196608003700566e-160], cuts=[])  # squares below the float range
@given(st.lists(st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e-6, max_value=1e-6),
    st.integers(-10**6, 10**6).map(float),
), min_size=2, max_size=40), st.lists(st.integers(1, 39), max_size=6))
def test_statistics_do_not_depend_on_the_cut(values, cuts):
    """Any split of a float column into chunks, merged in order, gives the
    very same statistics, and they match exact arithmetic."""
    pieces, start = [], 0
    for cut in sorted(set(c for c in cuts if c < len(values))) + [len(values)]:
        pieces.append((start, cut))
        start = cut
    stats = float_column_stats(values, [(0, len(values))])
    assert float_column_stats(values, pieces) == stats
    exact = sum(Fraction(v) for v in values)
    n = len(values)
    assert stats["sum"] == float(f"{float(exact):.12g}")
    assert stats["avg"] == float(f"{float(exact / n):.12g}")
    mean = exact / n
    var = sum((Fraction(v) - mean) ** 2 for v in values) / (n - 1)
    with decimal.localcontext(decimal.Context(prec=40)):
        exact_std = float((decimal.Decimal(var.numerator) / decimal.Decimal(var.denominator)).sqrt())
    assert stats["std"] == pytest.approx(exact_std, rel=1e-11)


def test_missing_spellings_of_the_generator_are_all_missing():
    assert all(s.strip().lower() in MISSING for s in MISSING_SPELLINGS)


def test_a_sum_past_the_largest_float_is_reported_without_a_warning(profile):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered" included
        kind, stats, _, _ = one_column(profile, ["1.7976931348623157e308"] * 3)
    assert kind == "float"
    assert stats["sum"] is None and stats["avg"] is None and stats["count"] == 3
