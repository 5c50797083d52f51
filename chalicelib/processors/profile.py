"""The `profile` processor (seed 004): schema inference, statistics and data
quality per column.

Types are decided from all rows, never from the first chunk: each chunk counts,
per column, how many values would fit each candidate type and keeps the
statistics of each candidate, so the merged partial decides the same way
whether the file came as 1 chunk or 500. Every per-column figure merges
exactly: counts, min and max trivially; the sum and the sum of squares are
kept as exact float expansions (a few floats whose exact sum is the exact
total), so the mean and the standard deviation are computed once, from exact
totals, and do not depend on how the file was cut.
"""
from __future__ import annotations

import codecs
import decimal
import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from ..jobs.model import InputError
from .base import ChunkResult, Emit, FinishContext, Outcome, Partial, ReportContent, TableChunk
from .summary import summary_key
from .table_options import TABLE_INPUT_OPTIONS_HELP

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})
BOOL_TOKENS = {"true": True, "false": False, "yes": True, "no": False}
EXAMPLES_KEPT = 3
DEFAULT_TYPE_THRESHOLD = 0.9

# Tried in this order on values that are not numbers; the first that parses wins.
# Month-first before day-first (the US habit) unless options.dayfirst is set.
_ISO = "ISO8601"
_MONTH_FIRST = ("%m/%d/%Y", "%m-%d-%Y", "%m/%d/%y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S")
_DAY_FIRST = ("%d/%m/%Y", "%d-%m-%Y", "%d/%m/%y", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S")
_UNAMBIGUOUS = (
    "%Y/%m/%d", "%Y.%m.%d", "%d.%m.%Y",
    "%b %d, %Y", "%B %d, %Y", "%b %d %Y", "%B %d %Y",
    "%d %b %Y", "%d %B %Y", "%d-%b-%Y", "%d-%b-%y", "%a, %d %b %Y", "%A, %B %d, %Y",
)
# A value must look like one of these shapes before any format is tried; this
# keeps free text from paying for a dozen failed parses.
_DATE_SHAPE = (
    r"^(?:\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:[ T].*)?"
    r"|.*\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\b.*\d.*"
    r"|\d.*\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b.*)$"
)


class ProfileProcessor:
    name = "profile"
    chunk_kind = "table"
    #: what its files are, by their first bytes (sources.sniff); others are refused
    input_kinds = ("csv", "xlsx")
    row_columns = None
    description = "Schema, statistics and data quality of every column of a CSV or Excel file"
    # What validate_options accepts, for GET /processors and the dashboard's form.
    options_help = [
        {"name": "type_threshold", "type": "number", "default": DEFAULT_TYPE_THRESHOLD,
         "help": "Share of a column's present values (0.5 to 1) that must fit a type "
                 "for the column to take it"},
        {"name": "dayfirst", "type": "boolean", "default": False,
         "help": "Read slash and dash dates day first (03/04/2024 is 3 April)"},
        *TABLE_INPUT_OPTIONS_HELP,
    ]

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        clean = dict(options)
        threshold = clean.get("type_threshold", DEFAULT_TYPE_THRESHOLD)
        try:
            threshold = float(threshold)
        except (TypeError, ValueError):
            raise InputError(f"options.type_threshold must be a number, got {threshold!r}") from None
        if not 0.5 <= threshold <= 1.0:
            raise InputError(f"options.type_threshold must be between 0.5 and 1, got {threshold}")
        clean["type_threshold"] = threshold
        clean["dayfirst"] = _flag(clean.get("dayfirst", False), "dayfirst")
        if clean.get("delimiter") not in (None, ""):
            delimiter = clean["delimiter"]
            if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
                raise InputError(f"options.delimiter must be one character such as , ; | or a tab, "
                                 f"got {delimiter!r}")
        if clean.get("encoding") not in (None, ""):
            clean["encoding"] = _encoding(clean["encoding"])
        sheet = clean.get("sheet")
        if sheet is not None and (isinstance(sheet, bool) or not isinstance(sheet, (str, int))):
            raise InputError(f"options.sheet must be a sheet name or a 1-based position, got {sheet!r}")
        return clean

    # -- per chunk ---------------------------------------------------------

    def process(self, chunk: TableChunk, emit: Emit) -> ChunkResult:
        formats = _date_formats(bool(chunk.options.get("dayfirst")))
        rows = chunk.row_numbers.to_numpy()
        columns = {
            str(name): _profile_column(chunk.frame.iloc[:, i], rows, formats)
            for i, name in enumerate(chunk.frame.columns)
        }
        return ChunkResult({"rows": int(len(chunk.frame)), "columns": columns})

    # -- merging -----------------------------------------------------------

    def merge(self, left: Partial, right: Partial) -> Partial:
        columns = dict(left["columns"])
        for name, col in right["columns"].items():
            columns[name] = _merge_column(columns[name], col) if name in columns else col
        return {"rows": left["rows"] + right["rows"], "columns": columns}

    # -- the result --------------------------------------------------------

    def finish(self, merged: Partial | None, ctx: FinishContext) -> Outcome:
        if merged is None or merged["rows"] == 0:
            raise InputError("the file has a header but no data rows")
        threshold = float(ctx.options.get("type_threshold", DEFAULT_TYPE_THRESHOLD))
        total = merged["rows"]
        schema: dict[str, str] = {}
        statistics: dict[str, Any] = {}
        missing_values: dict[str, Any] = {}
        invalid_values: dict[str, Any] = {}
        for name, col in merged["columns"].items():
            kind, valid = _decide_type(col, threshold)
            schema[name] = kind
            stats = _statistics(kind, col)
            if stats is not None:
                statistics[name] = stats
            if col["missing"]:
                missing_values[name] = _count(col["missing"], total)
            invalid = col["present"] - valid
            if invalid:
                invalid_values[name] = {
                    **_count(invalid, total),
                    "expected_type": kind,
                    "examples": col["examples"][_EXAMPLE_KIND[kind]],
                }
        summary = {
            "file_name": ctx.filename,
            "row_count": total,
            "column_count": len(schema),
            "schema": schema,
            "statistics": statistics,
            "quality_issues": {
                "total_rows": total,
                "has_issues": bool(missing_values or invalid_values),
                "missing_values": missing_values,
                "invalid_values": invalid_values,
            },
        }
        record = {k: summary[k] for k in ("row_count", "schema", "statistics", "quality_issues")}
        return Outcome(
            result=summary,
            files={summary_key(ctx.filename): _json_bytes(summary)},
            record=record,
            totals={"rows": total, "columns": len(schema),
                    "columns_with_issues": len(set(missing_values) | set(invalid_values))},
            report=_report(summary),
        )


_STAT_COLUMNS = ["min", "max", "avg", "sum", "std", "count"]


def _report(summary: dict[str, Any]) -> ReportContent:
    """One line per column: its type, statistics, missing and invalid counts."""
    header = ["column", "type", *_STAT_COLUMNS, "missing", "missing %", "invalid", "invalid %"]
    quality = summary["quality_issues"]
    lines = []
    for name, kind in summary["schema"].items():
        stats = summary["statistics"].get(name, {})
        missing = quality["missing_values"].get(name, {})
        invalid = quality["invalid_values"].get(name, {})
        lines.append([name, kind, *(stats.get(k) for k in _STAT_COLUMNS),
                      missing.get("count", 0), missing.get("percentage", 0.0),
                      invalid.get("count", 0), invalid.get("percentage", 0.0)])
    return ReportContent(
        sections=[("File", [("file", summary["file_name"]), ("rows", summary["row_count"]),
                            ("columns", summary["column_count"]),
                            ("has quality issues", quality["has_issues"])])],
        sheet=("Columns", header, lines),
    )


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0", ""):
        return value.strip().lower() in ("true", "yes", "1")
    raise InputError(f"options.{name} must be true or false, got {value!r}")


def _encoding(value: Any) -> str:
    """A text encoding Sluice can split: ASCII-compatible, or UTF-16 (which
    is transcoded first)."""
    try:
        name = codecs.lookup(str(value)).name
    except LookupError:
        raise InputError(f"options.encoding {value!r} is not a known text encoding") from None
    if not name.startswith("utf-16"):
        probe = '",;|\t\r\n0123456789abcXYZ'
        try:
            ok = probe.encode(name) == probe.encode("ascii")
        except UnicodeError:
            ok = False
        if not ok:
            raise InputError(f"options.encoding {value!r} is not supported; use UTF-8, UTF-16, "
                             "or a single-byte code page such as cp1252 or latin-1")
    return str(value)


_EXAMPLE_KIND = {"int": "number", "float": "number", "date": "date", "bool": "bool", "string": "number"}


def _date_formats(dayfirst: bool) -> tuple[str, ...]:
    first, second = (_DAY_FIRST, _MONTH_FIRST) if dayfirst else (_MONTH_FIRST, _DAY_FIRST)
    return (_ISO, *first, *second, *_UNAMBIGUOUS)


def _profile_column(raw: pd.Series, rows: np.ndarray, formats: tuple[str, ...]) -> dict:
    # Every text test runs once per distinct value, then spreads to the rows
    # through the factorize codes: columns repeat themselves (cities, flags,
    # dates), and numpy indexing is far cheaper than pandas' string methods.
    codes, uniques = pd.factorize(raw.to_numpy(dtype=object, na_value=""), sort=False)
    distinct = pd.Series(uniques, dtype=object)
    text = distinct.str.strip()
    lower = text.str.lower()
    present_u = ~lower.isin(MISSING_TOKENS).to_numpy()

    bool_values = lower.map(BOOL_TOKENS)
    bool_u = bool_values.notna().to_numpy() & present_u
    true_u = (bool_values == True).to_numpy() & present_u  # noqa: E712 - elementwise

    numbers_u = np.full(len(distinct), np.nan)
    # Only values that start like a number pay for a parse attempt.
    maybe = present_u & text.str[:1].isin(_NUMBER_STARTS).to_numpy()
    if maybe.any():
        numbers_u[maybe] = pd.to_numeric(text[maybe], errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan)
    number_u = np.isfinite(numbers_u)
    int_u = number_u.copy()
    if number_u.any():
        shown = text[number_u]
        int_u[number_u] = ~(shown.str.contains(".", regex=False)
                            | shown.str.contains("e", case=False, regex=False)).to_numpy()

    date_values, date_u = _parse_dates(text, present_u & ~number_u & ~bool_u, formats)

    present = present_u[codes]
    number = number_u[codes]
    date = date_u[codes]
    boolean = bool_u[codes]
    present_rows = rows[present]
    shown_text = text.to_numpy()[codes[present]]
    column: dict[str, Any] = {
        "missing": int(len(codes) - present.sum()),
        "present": int(present.sum()),
        "number": int(number.sum()),
        "integer": int(int_u[codes].sum()),
        "date": int(date.sum()),
        "bool": int(boolean.sum()),
        "true": int(true_u[codes].sum()),
        "numeric": _moments(numbers_u[codes][number]),
        "date_min": None,
        "date_max": None,
        "examples": {
            "number": _examples(shown_text, present_rows, ~number[present]),
            "date": _examples(shown_text, present_rows, ~date[present]),
            "bool": _examples(shown_text, present_rows, ~boolean[present]),
        },
    }
    if date_u.any():
        # Every distinct value occurs in some row, so the extremes of the
        # distinct dates are the column's.
        dates = date_values[date_u]
        column["date_min"] = _iso(dates.min())
        column["date_max"] = _iso(dates.max())
    return column


_NUMBER_STARTS = list("0123456789+-.")


def _parse_dates(values: pd.Series, candidates: np.ndarray, formats: tuple[str, ...]):
    """Parse values (where candidates is true) as dates with the first format
    that fits; returns naive UTC datetimes and the mask of parsed values."""
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    mask = np.zeros(len(values), dtype=bool)
    if not candidates.any():
        return parsed, mask
    shaped = values[candidates].str.match(_DATE_SHAPE, case=False).to_numpy()
    todo = values[candidates][shaped]
    for fmt in formats:
        if todo.empty:
            break
        if fmt == _ISO:
            got = pd.to_datetime(todo, format=fmt, errors="coerce", utc=True).dt.tz_localize(None)
        else:
            got = pd.to_datetime(todo, format=fmt, errors="coerce")
        ok = got.notna()
        if ok.any():
            parsed.loc[got.index[ok]] = got[ok].astype("datetime64[us]")
            todo = todo[~ok]
    mask = parsed.notna().to_numpy()
    return parsed, mask


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S")


def _moments(values: np.ndarray) -> dict[str, Any] | None:
    if values.size == 0:
        return None
    return {
        "count": int(values.size),
        "sum": _exact_sum(values.tolist()),
        "sumsq": _exact_sum(_exact_squares(values[np.abs(values) >= TINY])),
        # Squares of tiny values, kept exact at a scale (see TINY).
        "sumsq_tiny": _exact_sum(_exact_squares(values[np.abs(values) < TINY] * TINY_SCALE)),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _exact_sum(values: list[float]) -> list[float]:
    """Floats whose exact sum is the exact sum of `values`, largest first.

    math.fsum rounds the exact sum correctly; repeating it on what is left
    (the values minus the terms found so far) yields the rest, one float at a
    time. Typical data needs one to three terms. Whatever order the values
    come in, and however they were grouped, the exact sum is the same."""
    terms: list[float] = []
    try:
        while True:
            rest = math.fsum(values + [-t for t in terms])
            if rest == 0 or not math.isfinite(rest):
                if not math.isfinite(rest):
                    terms.append(rest)
                return terms
            terms.append(rest)
            if len(terms) > 60:  # cannot happen with finite floats; be safe
                return terms
    except (OverflowError, ValueError):
        with np.errstate(over="ignore"):  # overflowing is the point: the sum is infinite
            total = float(np.sum(values))
        return [total if not math.isfinite(total) else math.copysign(math.inf, total)]


# Below 2**-450 the rounding error of x*x falls under the smallest float, so
# Dekker's product loses it: such values are squared at the exact scale 2**600.
TINY = 2.0 ** -450
TINY_SCALE = 2.0 ** 600


def _exact_squares(values: np.ndarray) -> list[float]:
    """Pairs (x*x rounded, its rounding error) whose exact sum is x*x for
    every value (Dekker's product), as one flat list."""
    big = np.abs(values) > 1e150
    if big.any():
        return [math.inf]  # x*x overflows; no finite sum of squares
    square = values * values
    split = values * 134217729.0  # 2**27 + 1
    hi = split - (split - values)
    lo = values - hi
    error = ((hi * hi - square) + 2.0 * hi * lo) + lo * lo
    return square.tolist() + error[error != 0].tolist()


def _exact(terms: list[float]) -> Fraction | None:
    if any(not math.isfinite(t) for t in terms):
        return None
    return sum((Fraction(t) for t in terms), Fraction(0))


def _examples(values: np.ndarray, rows: np.ndarray, mask: np.ndarray) -> list[dict[str, Any]]:
    idx = np.flatnonzero(mask)[:EXAMPLES_KEPT]
    return [{"row": int(rows[i]), "value": str(values[i])[:100]} for i in idx]


def _merge_moments(a: dict | None, b: dict | None) -> dict | None:
    if a is None:
        return b
    if b is None:
        return a
    return {
        "count": a["count"] + b["count"],
        "sum": _exact_sum(a["sum"] + b["sum"]),
        "sumsq": _exact_sum(a["sumsq"] + b["sumsq"]),
        "sumsq_tiny": _exact_sum(a.get("sumsq_tiny", []) + b.get("sumsq_tiny", [])),
        "min": min(a["min"], b["min"]),
        "max": max(a["max"], b["max"]),
    }


def _merge_column(a: dict, b: dict) -> dict:
    merged = {k: a[k] + b[k] for k in ("missing", "present", "number", "integer", "date", "bool", "true")}
    merged["numeric"] = _merge_moments(a["numeric"], b["numeric"])
    merged["date_min"] = min(filter(None, (a["date_min"], b["date_min"])), default=None)
    merged["date_max"] = max(filter(None, (a["date_max"], b["date_max"])), default=None)
    merged["examples"] = {
        kind: (a["examples"][kind] + b["examples"][kind])[:EXAMPLES_KEPT] for kind in a["examples"]
    }
    return merged


def _decide_type(col: dict, threshold: float) -> tuple[str, int]:
    """The column's type and how many of its present values fit it."""
    present = col["present"]
    if present == 0:
        return "string", 0
    if col["bool"] / present >= threshold:
        return "bool", col["bool"]
    if col["number"] / present >= threshold:
        return ("int" if col["integer"] == col["number"] else "float"), col["number"]
    if col["date"] / present >= threshold:
        return "date", col["date"]
    return "string", present


def _statistics(kind: str, col: dict) -> dict[str, Any] | None:
    if kind in ("int", "float"):
        m = col["numeric"]
        n = m["count"]
        number = int if kind == "int" else _sig
        total = _exact(m["sum"])
        squares = _exact(m["sumsq"])
        if squares is not None:
            squares += _exact(m.get("sumsq_tiny", [])) / Fraction(TINY_SCALE) ** 2
        if total is None:  # the sum itself overflows
            return {"min": number(m["min"]), "max": number(m["max"]), "avg": None,
                    "count": n, "sum": None, "std": None}
        std = None
        if n > 1 and squares is not None:
            m2 = max(squares - total * total / n, Fraction(0))
            std = _sig(_sqrt(m2 / (n - 1)))
        return {
            "min": number(m["min"]), "max": number(m["max"]), "avg": _sig(float(total / n)),
            "count": n, "sum": int(total) if kind == "int" else _sig(float(total)), "std": std,
        }
    if kind == "date":
        return {"min": _trim_midnight(col["date_min"]), "max": _trim_midnight(col["date_max"]),
                "count": col["date"]}
    if kind == "bool":
        return {"count": col["bool"], "true": col["true"], "false": col["bool"] - col["true"]}
    return None


def _trim_midnight(value: str | None) -> str | None:
    return value[:10] if value and value.endswith("T00:00:00") else value


def _sqrt(x: Fraction) -> float:
    # In Decimal, not float: the variance of tiny values (1e-160) squares into
    # the subnormal range, where a float keeps only a few significant digits.
    with decimal.localcontext(decimal.Context(prec=30)):
        return float((decimal.Decimal(x.numerator) / decimal.Decimal(x.denominator)).sqrt())


def _sig(x: float) -> float:
    # 12 significant digits: the figures are exact (see _exact_sum), this only
    # keeps binary noise such as 0.30000000000000004 out of the summary.
    return float(f"{x:.12g}")


def _count(n: int, total: int) -> dict[str, Any]:
    return {"count": n, "percentage": round(100.0 * n / total, 2) if total else 0.0}


def _json_bytes(body: dict) -> bytes:
    import json

    return json.dumps(body, indent=2, ensure_ascii=False).encode("utf-8")
